#!/usr/bin/env bash
# Bring up the local K3s-DaaS environment on a Debian 12 machine, as root. Idempotent: each step
# checks first and a second run reports "up to date" without doing work.
#   1. Debian packages (docker.io, debootstrap, ...)   4. systemd base image k3sdaas-base:<hash>
#   2. the Docker engine (started in the background)   5. npm tools for the Move formatter
#   3. the Python venv .venv with the project installed, and links to the collections it bundles
#   6. the local Sui node (k3sdaas-localnet sui on 127.0.0.1:9000) and a funded operator key
#   7. kubectl when the machine has none (.state/bin/kubectl is the one the local default runs), and the local
#      Kubernetes API (k3sdaas-localnet kube on 127.0.0.1:6444)
#   8. the simulated NSM for the Nautilus master (k3sdaas-localnet nsm on .state/nsm/nsm.sock)
set -Eeuo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$repo/scripts/lib/common.sh"
state_dir=$repo/.state
dockerd_log=$state_dir/dockerd.log
dockerd_timeout=${K3SDAAS_DOCKERD_TIMEOUT:-60}
base_image=k3sdaas-base

trap 'die "setup.sh failed at line $LINENO: $BASH_COMMAND"' ERR

[[ $(id -u) -eq 0 ]] || die "run scripts/setup.sh as root (it installs Debian packages and starts dockerd)"
command -v apt-get >/dev/null || die "scripts/setup.sh supports Debian 12 only (apt-get not found)"
mkdir -p "$state_dir"
# Concurrent runs (a developer and a test, say) would race on apt, dockerd and the image build.
exec {lock_fd}>"$state_dir/setup.lock"
if ! flock -n "$lock_fd"; then
  say "waiting for another scripts/setup.sh run to finish"
  flock "$lock_fd"
fi

install_debian_packages() {
  # nginx + headers-more: the master's front, the Kubernetes API proxy's data path (src/k3sdaas/nautilus/front.py)
  local wanted=(docker.io debootstrap iproute2 python3-venv shellcheck socat nginx libnginx-mod-http-headers-more-filter)
  local missing=() pkg
  [[ -f $repo/move/package.json ]] && ! command -v npm >/dev/null && wanted+=(npm)
  for pkg in "${wanted[@]}"; do
    deb_installed "$pkg" || missing+=("$pkg")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    say "Debian packages up to date"
    return
  fi
  say "apt-get update (needed for: ${missing[*]})"
  apt-get update -q
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  with_heartbeat "apt-get install" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

start_docker_engine() {
  if docker_cli info >/dev/null 2>&1; then
    say "docker engine up (already running)"
    return
  fi
  command -v dockerd >/dev/null || die "dockerd not found although docker.io is installed"
  # No systemd here: run dockerd detached so it outlives this script (without our lock fd).
  say "starting dockerd (log: $dockerd_log)"
  setsid nohup dockerd >>"$dockerd_log" 2>&1 </dev/null {lock_fd}>&- &
  local waited=0
  until docker_cli info >/dev/null 2>&1; do
    if ((waited >= dockerd_timeout)); then
      die "dockerd did not answer 'docker info' within ${dockerd_timeout}s; last log lines:
$(tail -n 20 "$dockerd_log")"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  say "docker engine up after ${waited}s"
}

install_python_venv() {
  local venv=$repo/.venv stamp=$repo/.venv/.k3sdaas-install-hash pip_args=()
  local inputs=("$repo/pyproject.toml" "$repo/localnet/pyproject.toml")
  [[ -f $repo/pyproject.toml ]] || die "pyproject.toml not found in $repo"
  if [[ -f $repo/constraints.txt ]]; then
    inputs+=("$repo/constraints.txt")
    pip_args+=(-c "$repo/constraints.txt")
  fi
  local want
  want=$(content_hash "${inputs[@]}")
  if [[ -x $venv/bin/python ]] && stamp_matches "$stamp" "$want"; then
    say "python venv up to date (.venv)"
    return
  fi
  if [[ ! -x $venv/bin/python ]]; then
    say "creating python venv .venv"
    python3 -m venv "$venv"
  fi
  [[ -f $repo/constraints.txt ]] || say "note: constraints.txt missing, installing without pins"
  say "installing the project into .venv (pip install -e '.[dev]' -e localnet, a few minutes on a fresh venv)"
  with_heartbeat "pip install" pip_install_project "$venv" "${pip_args[@]}"
  write_stamp "$stamp" "$want"
}

# Usage: pip_install_project VENV [PIP_ARGS...]
pip_install_project() {
  local venv=$1
  shift
  # The pinned pip first: Python's bundled one is too old for options the enclave build uses.
  "$venv/bin/pip" install --progress-bar off --quiet "$@" --upgrade pip
  # Already-satisfied lines are noise on a re-install; downloads and the result stay visible.
  # The stand-ins are a distribution of their own (localnet/), kept out of the production wheel.
  "$venv/bin/pip" install --progress-bar off "$@" -e "${repo}[dev]" -e "$repo/localnet" |
    { grep --line-buffered -v '^Requirement already satisfied' || true; }
}

# ansible-test only finds dependencies next to the collection; the helper links the bundled ones.
link_bundled_collections() {
  local output changes
  output=$("$repo/scripts/lib/link-collections.sh" "$repo/.venv/bin/python") ||
    die "linking the bundled collections failed: $output"
  changes=$(grep -v 'already linked' <<<"$output" || true)
  if [[ -z $changes ]]; then
    say "bundled collections up to date (collections/ansible_collections)"
  else
    printf '%s\n' "$changes"
  fi
}

build_base_image() {
  local tag
  tag=$base_image:$(content_hash "$repo"/images/base/*)
  if docker_cli image inspect "$tag" >/dev/null 2>&1; then
    say "base image up to date ($tag)"
  else
    say "building base image $tag (about a minute)"
    with_heartbeat "base image build" "$repo/images/base/build.sh" "$tag"
  fi
  # latest always points at the current recipe, also after a recipe rollback.
  local want_id latest_id
  want_id=$(docker_cli image inspect -f '{{.Id}}' "$tag")
  latest_id=$(docker_cli image inspect -f '{{.Id}}' "$base_image:latest" 2>/dev/null || true)
  if [[ $want_id != "$latest_id" ]]; then
    say "tagging $tag as $base_image:latest"
    docker_cli tag "$tag" "$base_image:latest"
  fi
  # Images of older recipes only take space; one still used by a container stays until it is gone.
  local old
  for old in $(docker_cli image ls --format '{{.Repository}}:{{.Tag}}' "$base_image"); do
    [[ $old == "$tag" || $old == "$base_image:latest" ]] && continue
    if docker_cli rmi "$old" >/dev/null 2>&1; then say "removed old base image $old"; fi
  done
}

install_move_npm_tools() {
  local move=$repo/move
  if [[ ! -f $move/package.json ]]; then
    say "no move/package.json, skipping npm tools"
    return
  fi
  local lock=$move/package-lock.json stamp=$move/node_modules/.k3sdaas-install-hash want
  if [[ -f $lock ]]; then want=$(content_hash "$move/package.json" "$lock"); else want=$(content_hash "$move/package.json"); fi
  if stamp_matches "$stamp" "$want"; then
    say "move npm tools up to date"
    return
  fi
  if [[ -f $lock ]]; then
    say "installing move npm tools (npm ci --prefix move)"
    with_heartbeat "npm ci" npm ci --prefix "$move" --no-audit --no-fund
  else
    say "installing move npm tools (npm install --prefix move; no package-lock.json yet)"
    with_heartbeat "npm install" npm install --prefix "$move" --no-audit --no-fund
    want=$(content_hash "$move/package.json" "$lock")
  fi
  write_stamp "$stamp" "$want"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Whether a simulated NSM answers on the Unix socket $1 (one DescribeNSM through the product's client).
nsm_answers() {
  "$repo/.venv/bin/python" -c 'import sys; from k3sdaas.attestation.nsm import NsmClient, SocketTransport
NsmClient(SocketTransport(sys.argv[1], timeout=5)).describe_nsm()' "$1" 2>/dev/null
}

# SIGTERM, then SIGKILL after 10 s.
stop_process() {
  local pid=$1 waited=0
  kill "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    ((waited >= 50)) && kill -9 "$pid" 2>/dev/null
    sleep 0.2
    waited=$((waited + 1))
  done
}

# The stand-in for a Sui network, a detached process like dockerd. It is restarted when its code or
# the Move sources change, so a pulled change never runs against an old node.
start_local_sui_node() {
  local sui_state=$state_dir/sui port=${K3SDAAS_SUI_PORT:-9000}
  local pidfile=$sui_state/node.pid log=$sui_state/node.log stamp=$sui_state/node.hash want pid=""
  mkdir -p "$sui_state"
  # The chain pins the local NSM simulator's root (as Sui pins AWS's), so the local master's attestation registers.
  local nitro_root=$state_dir/nsm/root.pem
  # The local hosts (a worker's key refreshing or unstaking its token) dial it through the relay on their gateway.
  local san
  san=$(hosts_gateway)
  want=$(content_hash "$repo"/localnet/src/k3sdaas_localnet/sui/*.py "$repo"/localnet/src/k3sdaas_localnet/sui/handlers/*.py \
    "$repo"/localnet/src/k3sdaas_localnet/pki.py "$repo"/move/sources/*.move "$nitro_root" <(echo "$san"))
  [[ -f $pidfile ]] && pid=$(<"$pidfile")
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    if stamp_matches "$stamp" "$want" && port_open "$port"; then
      say "local Sui node up (127.0.0.1:$port, pid $pid)"
      return
    fi
    say "restarting the local Sui node (its code or the Move sources changed, or it stopped serving)"
    stop_process "$pid"
  fi
  # Another program on the port would answer our readiness check in the node's place.
  port_open "$port" && die "127.0.0.1:$port is in use by another program; stop it (the local Sui node needs the port)"
  say "starting the local Sui node on 127.0.0.1:$port (log: $log)"
  setsid nohup "$repo/.venv/bin/k3sdaas-localnet" sui --state "$sui_state" --port "$port" --nitro-root "$nitro_root" \
    --tls-san "$san" >>"$log" 2>&1 </dev/null {lock_fd}>&- &
  echo $! >"$pidfile"
  local waited=0
  until port_open "$port"; do
    kill -0 "$(<"$pidfile")" 2>/dev/null || die "the local Sui node exited; last log lines:
$(tail -n 20 "$log")"
    ((waited >= 60)) && die "the local Sui node did not listen on $port within 60s; see $log"
    sleep 0.5
    waited=$((waited + 1))
  done
  write_stamp "$stamp" "$want"
}

# kubectl for the tests and the local default when the machine has none: Debian's kubernetes-client,
# unpacked (its .deb conflicts with other packages' kubectl file, google-cloud-cli's for one).
install_kubectl() {
  # Debian's kubectl 1.20 is the oldest client we support: unpacked always, so the suite runs it beside
  # whatever newer kubectl the machine has (and a machine with none still gets one).
  local dest=$state_dir/kubectl-1.20 download
  if [[ -x $dest/usr/bin/kubectl ]]; then
    say "kubectl 1.20 present ($dest/usr/bin/kubectl)"
    return
  fi
  download=$(mktemp -d)
  say "unpacking Debian's kubernetes-client into $dest"
  (cd "$download" && apt-get download -q kubernetes-client 2>/dev/null) ||
    { apt-get update -q && (cd "$download" && apt-get download -q kubernetes-client); }
  rm -rf "$dest.partial"
  dpkg-deb -x "$download"/kubernetes-client_*.deb "$dest.partial"
  mv "$dest.partial" "$dest"
  rm -rf "$download"
}

# The kubectl the local default's checks run, .state/bin/kubectl (inventories/local): see pick_kubectl.
link_kubectl() {
  local chosen
  chosen=$(pick_kubectl "$state_dir/kubectl-1.20/usr/bin/kubectl")
  mkdir -p "$state_dir/bin"
  if [[ $(readlink "$state_dir/bin/kubectl" || true) == "$chosen" ]]; then
    say "kubectl for the local default up to date ($chosen)"
  else
    ln -sfn "$chosen" "$state_dir/bin/kubectl"
    say "linked .state/bin/kubectl to $chosen, the kubectl the local default runs"
  fi
}

# The Kubernetes API stand-in on the K3s API/supervisor port, detached like the Sui node and restarted
# when its code changes; it writes .state/kube/admin.kubeconfig once it serves.
start_local_kube_api() {
  local kube_state=$state_dir/kube port=${K3SDAAS_KUBE_PORT:-6444}
  local pidfile=$kube_state/server.pid log=$kube_state/server.log stamp=$kube_state/server.hash want pid=""
  mkdir -p "$kube_state"
  # The local hosts reach it (their K3s supervisor/API) through the relay on their network's gateway.
  local san
  san=$(hosts_gateway)
  want=$(content_hash "$repo"/localnet/src/k3sdaas_localnet/kube/*.py "$repo"/localnet/src/k3sdaas_localnet/pki.py \
    <(echo "$san"))
  [[ -f $pidfile ]] && pid=$(<"$pidfile")
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    if stamp_matches "$stamp" "$want" && port_open "$port" && [[ -f $kube_state/admin.kubeconfig ]]; then
      say "local Kubernetes API up (127.0.0.1:$port, pid $pid, kubeconfig $kube_state/admin.kubeconfig)"
      return
    fi
    say "restarting the local Kubernetes API (its code changed, or it stopped serving)"
    stop_process "$pid"
  fi
  port_open "$port" && die "127.0.0.1:$port is in use by another program; stop it (the local Kubernetes API needs the port)"
  say "starting the local Kubernetes API on 127.0.0.1:$port (log: $log)"
  setsid nohup "$repo/.venv/bin/k3sdaas-localnet" kube --state "$kube_state" --port "$port" --tls-san "$san" \
    >>"$log" 2>&1 </dev/null {lock_fd}>&- &
  echo $! >"$pidfile"
  local waited=0
  until [[ -f $kube_state/admin.kubeconfig ]]; do
    kill -0 "$(<"$pidfile")" 2>/dev/null || die "the local Kubernetes API exited; last log lines:
$(tail -n 20 "$log")"
    ((waited >= 60)) && die "the local Kubernetes API did not serve on $port within 30s; see $log"
    sleep 0.5
    waited=$((waited + 1))
  done
  write_stamp "$stamp" "$want"
}

# The simulated Nitro Secure Module for `k3sdaas-nautilus serve --local`, detached like the Kubernetes API
# and restarted when its code changes; .state/nsm/root.pem (kept across restarts) verifies its documents.
start_local_nsm() {
  local nsm_state=$state_dir/nsm
  local pidfile=$nsm_state/server.pid log=$nsm_state/server.log stamp=$nsm_state/server.hash want pid=""
  local socket=$nsm_state/nsm.sock
  mkdir -p "$nsm_state"
  want=$(content_hash "$repo"/localnet/src/k3sdaas_localnet/nitro/*.py \
    "$repo"/src/k3sdaas/attestation/{cose,document,nsm}.py)
  [[ -f $pidfile ]] && pid=$(<"$pidfile")
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    if stamp_matches "$stamp" "$want" && nsm_answers "$socket"; then
      say "local NSM simulator up ($socket, pid $pid, root $nsm_state/root.pem)"
      return
    fi
    say "restarting the local NSM simulator (its code changed, or it stopped serving)"
    stop_process "$pid"
  fi
  nsm_answers "$socket" && die "$socket is served by another program; stop it (the local NSM simulator needs it)"
  rm -f "$socket" # left by a simulator that was killed; the wait below must not take it for the new one
  say "starting the local NSM simulator on $socket (log: $log)"
  setsid nohup "$repo/.venv/bin/k3sdaas-localnet" nsm --state "$nsm_state" \
    >>"$log" 2>&1 </dev/null {lock_fd}>&- &
  echo $! >"$pidfile"
  local waited=0
  until nsm_answers "$socket"; do
    kill -0 "$(<"$pidfile")" 2>/dev/null || die "the local NSM simulator exited; last log lines:
$(tail -n 20 "$log")"
    ((waited >= 60)) && die "the local NSM simulator did not serve on $socket within 30s; see $log"
    sleep 0.5
    waited=$((waited + 1))
  done
  write_stamp "$stamp" "$want"
}

# The local hosts' way to the chain and the Kubernetes API: what the internet is to an EC2 parent. socat relays
# bound to the gateway of the hosts' Docker network (created here if absent, as role local_hosts would) forward
# to the loopback-only stand-ins; nothing else on the machine's interfaces is exposed.
hosts_gateway() {
  local network=k3sdaas gateway
  docker network inspect "$network" >/dev/null 2>&1 || docker network create "$network" >/dev/null
  gateway=$(docker network inspect "$network" -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}')
  [[ -n $gateway ]] || die "docker network $network has no gateway address"
  echo "$gateway"
}

start_host_relays() {
  local network=k3sdaas gateway port pidfile log
  gateway=$(hosts_gateway)
  mkdir -p "$state_dir/relay"
  echo "$gateway" >"$state_dir/relay/gateway" # read by inventories/local
  for port in ${K3SDAAS_SUI_PORT:-9000} ${K3SDAAS_KUBE_PORT:-6444}; do
    pidfile=$state_dir/relay/$port.pid log=$state_dir/relay/$port.log
    if [[ -f $pidfile ]] && kill -0 "$(<"$pidfile")" 2>/dev/null &&
      grep -q "bind=$gateway," "/proc/$(<"$pidfile")/cmdline" 2>/dev/null; then
      say "relay $gateway:$port -> 127.0.0.1:$port up (pid $(<"$pidfile"))"
      continue
    fi
    [[ -f $pidfile ]] && stop_process "$(<"$pidfile")"
    say "relaying $gateway:$port (docker network $network) to 127.0.0.1:$port"
    setsid nohup socat "TCP-LISTEN:$port,bind=$gateway,reuseaddr,fork" "TCP:127.0.0.1:$port" \
      >>"$log" 2>&1 </dev/null {lock_fd}>&- &
    echo $! >"$pidfile"
  done
}

prepare_sui_operator() {
  local sui_state=$state_dir/sui
  say "$("$repo/.venv/bin/k3sdaas-localnet" sui --state "$sui_state" operator \
    --key-file "$sui_state/operator.key" --build-output "$sui_state/k3s_daas.build.json" \
    --sources "$repo/move/sources")"
}

started=$SECONDS
install_debian_packages
install_kubectl
link_kubectl
start_docker_engine
install_python_venv
link_bundled_collections
build_base_image
install_move_npm_tools
start_local_nsm
start_local_sui_node
prepare_sui_operator
start_local_kube_api
start_host_relays
say "setup complete in $((SECONDS - started))s"
