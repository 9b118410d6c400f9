#!/usr/bin/env bash
# The whole test suite on this machine: bring the local environment up, then run every quality gate.
# Each gate runs even when an earlier one failed, so one run shows everything; the exit status is
# non-zero when any gate failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/setup.sh || { echo "FAILED: local environment setup"; exit 1; }

export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$root/collections"
collection="$root/collections/ansible_collections/k3sdaas/core"

failed=()
passed=()
gate() {
  local name=$1
  shift
  printf '\n==> gate: %s\n' "$name"
  local started=$SECONDS
  if "$@"; then
    passed+=("$name")
    printf '==> gate %s passed (%ss)\n' "$name" $((SECONDS - started))
  else
    failed+=("$name")
    printf '==> gate %s FAILED (%ss)\n' "$name" $((SECONDS - started))
  fi
}

ansible_test() {
  # ansible-test must run from the collection's own directory.
  # Its --venv bootstrap downloads get-pip from a host we cannot reach; ours uses ensurepip + PyPI.
  mkdir -p ~/.ansible/test/cache
  cp "$root/scripts/lib/ansible_test_get_pip.py" ~/.ansible/test/cache/get_pip_24_2.py
  (cd "$collection" && ansible-test "$@")
}

pytest_gate() {
  # pytest exits 5 when it collected no test: that must not count as a pass.
  pytest "$@"
  local status=$?
  [ "$status" -eq 5 ] && echo "pytest collected no tests"
  return "$status"
}

gate ansible-lint ansible-lint --profile production
gate sanity ansible_test sanity --venv --python 3.11 --requirements
gate units ansible_test units --local --python 3.11
gate move bash move/check.sh
gate molecule molecule test --all
gate pytest pytest_gate tests

printf '\n==> gates passed: %s\n' "${passed[*]:-none}"
if [ "${#failed[@]}" -gt 0 ]; then
  printf '==> gates FAILED: %s\n' "${failed[*]}"
  exit 1
fi
