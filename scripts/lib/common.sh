# shellcheck shell=bash
# Shared helpers for scripts/setup.sh and the image recipes (sourced, not executed).

# Progress line on stdout; every step announces itself so a long step is never silent.
say() { printf '==> %s\n' "$*"; }

die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

# Content hash of files (names and bytes), short enough for an image tag.
content_hash() {
  local f
  for f in "$@"; do
    printf '%s\0' "$(basename "$f")"
    cat "$f"
  done | sha256sum | cut -c1-12
}

# True when STAMP_FILE holds exactly VALUE.
stamp_matches() {
  local stamp_file=$1 value=$2
  [[ -f $stamp_file && $(<"$stamp_file") == "$value" ]]
}

write_stamp() {
  local stamp_file=$1 value=$2
  mkdir -p "$(dirname "$stamp_file")"
  printf '%s\n' "$value" >"$stamp_file"
}

deb_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Prefer Debian's client (matches the engine); an older or newer one also negotiates the API.
docker_cli() {
  if [[ -x /usr/bin/docker ]]; then /usr/bin/docker "$@"; else docker "$@"; fi
}

# Run a command and print a progress line every 30 s while it runs: long steps are never silent.
with_heartbeat() {
  local label=$1 beat status=0
  shift
  (
    # Take the sleep down too: a leftover child would keep the caller's open fds (its lock) busy.
    trap 'kill "$!" 2>/dev/null; exit 0' TERM
    elapsed=0
    while :; do
      sleep 30 &
      wait "$!"
      elapsed=$((elapsed + 30))
      say "$label: still running (${elapsed}s)"
    done
  ) &
  beat=$!
  "$@" || status=$?
  kill "$beat" 2>/dev/null
  wait "$beat" 2>/dev/null || true
  return "$status"
}

# Usage: pick_kubectl FALLBACK. The kubectl on PATH, or FALLBACK when there is none. google-cloud-cli's kubectl
# is a dispatcher that asks the server for /version before every command (about 1.5 s more each through the
# seal-authenticated proxy): the newest kubectl.1.NN build next to it, which it would run, is picked instead.
pick_kubectl() {
  local found chosen newest
  found=$(command -v kubectl || true)
  if [[ -z $found ]]; then
    echo "$1"
    return
  fi
  chosen=$(readlink -f "$found")
  newest=$(find "$(dirname "$chosen")" -maxdepth 1 -name 'kubectl.1.*' | sort -V | tail -n 1)
  echo "${newest:-$chosen}"
}
