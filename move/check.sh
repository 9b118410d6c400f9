#!/usr/bin/env bash
# Quality gate for the Move package:
#   1. format gate: every .move file must parse and be formatted (prettier + Mysten's Move plugin);
#   2. `sui move build` and `sui move test`, when a `sui` binary is on PATH (reported as SKIPPED
#      otherwise: no Sui CLI is installable from the package registries this project uses).
# Usage: move/check.sh [PACKAGE_DIR]   (default: the directory of this script)
# Exits non-zero when any step fails; the formatter names each bad file.
set -uo pipefail

tools_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
package_dir=$(cd "${1:-$tools_dir}" && pwd)
prettier=$tools_dir/node_modules/.bin/prettier
status=0

if [[ ! -x $prettier ]]; then
  echo "FAILED: format gate: $prettier not found; run 'npm ci --prefix move' (scripts/setup.sh does)" >&2
  exit 1
fi

echo "==> format gate: prettier --check (@mysten/prettier-plugin-move) in $package_dir"
# --config pins our settings even for a package directory outside move/ (used by the tests).
# build/ holds the framework sources `sui move build` copies in; they are not ours to format.
if (cd "$package_dir" && "$prettier" --config "$tools_dir/.prettierrc" --check '**/*.move' '!**/build/**'); then
  echo "PASSED: format gate"
else
  echo "FAILED: format gate (run: npx --prefix move prettier --write 'move/**/*.move')"
  status=1
fi

if command -v sui >/dev/null 2>&1; then
  for step in build test; do
    echo "==> sui move $step"
    if sui move "$step" --path "$package_dir"; then
      echo "PASSED: sui move $step"
    else
      echo "FAILED: sui move $step"
      status=1
    fi
  done
else
  echo "SKIPPED: sui move build (no sui binary on PATH)"
  echo "SKIPPED: sui move test (no sui binary on PATH)"
fi
exit "$status"
