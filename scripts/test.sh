#!/usr/bin/env bash
# The whole test suite on this machine: bring the local environment up, then run every quality gate.
# Each gate runs even when an earlier one failed, so one run shows everything; the exit status is
# non-zero when any gate failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD

bash scripts/setup.sh || { echo "FAILED: local environment setup"; exit 1; }

export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$root/collections"
collection="$root/collections/ansible_collections/k3sdaas/core"

failed=()
passed=()
# Usage: gate NAME BUDGET COMMAND...  A gate over its budget (seconds) is stopped, with everything it runs, and
# fails; what was running just before is printed, so a hang names itself and the later gates still run.
gate() {
  local name=$1 budget=$2 status watchdog
  shift 2
  printf '\n==> gate: %s (budget %ss)\n' "$name" "$budget"
  local started=$SECONDS
  (sleep "$((budget - 10))" && printf '\n==> gate %s is 10 s from its budget; running now:\n%s\n' "$name" \
    "$(ps -eo pid,etimes,args --forest | cut -c1-220 | tail -n 80)") &
  watchdog=$!
  timeout --kill-after=30 "$budget" bash -c '"$@"' gate "$@"
  status=$?
  kill "$watchdog" 2>/dev/null
  if [ "$status" -eq 0 ]; then
    passed+=("$name")
    printf '==> gate %s passed (%ss)\n' "$name" $((SECONDS - started))
  else
    failed+=("$name")
    [ "$status" -eq 124 ] || [ "$status" -eq 137 ] && printf '==> gate %s ran out of its %ss budget\n' "$name" "$budget"
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

collection_build() {
  # What a Galaxy or Automation Hub user gets: build the tarball, install it into an empty collections
  # path (its dependencies come from the bundled `ansible` package on sys.path), then use it from there
  # only, outside the repository so ansible.cfg's collections_path does not apply.
  local tmp status
  tmp=$(mktemp -d)
  (
    set -e
    cd "$tmp"
    export ANSIBLE_COLLECTIONS_PATH=$tmp/collections
    ansible-galaxy collection build --output-path "$tmp/dist" "$collection"
    ansible-galaxy collection install --offline -p "$tmp/collections" "$tmp"/dist/k3sdaas-core-*.tar.gz
    installed=$tmp/collections/ansible_collections/k3sdaas/core
    for module in "$installed"/plugins/modules/*.py; do
      module=$(basename "$module" .py)
      ansible-doc --json "k3sdaas.core.$module" >"$tmp/doc.json"
      # the documentation must come from the installed tarball, not from the working tree
      grep -q "\"filename\": \"$installed/plugins/modules/$module.py\"" "$tmp/doc.json" ||
        { echo "ansible-doc k3sdaas.core.$module did not read $installed"; exit 1; }
    done
    ansible-doc --list k3sdaas.core
    for role in "$installed"/roles/*/; do
      ansible-doc -t role "k3sdaas.core.$(basename "$role")" >/dev/null
    done
    # One module for real, in a state that touches nothing: no enclave to remove in an empty simulator.
    K3SDAAS_NITRO_SIM_STATE=$tmp/sim ansible localhost -m k3sdaas.core.nitro_enclave \
      -e "ansible_python_interpreter=$root/.venv/bin/python" \
      -a "{\"state\": \"absent\", \"eif_path\": \"$tmp/none.eif\", \"nitro_cli\": [\"$root/.venv/bin/python\", \"-m\", \"k3sdaas_localnet.nitro.cli\"]}" |
      tee "$tmp/run.txt"
    grep -q '"changed": false' "$tmp/run.txt"
  )
  status=$?
  rm -rf "$tmp"
  return "$status"
}

shell_scripts() {
  # Every tracked shell script: *.sh and extension-less scripts with a sh/bash shebang (e.g. .ci/run).
  local file
  while IFS= read -r -d '' file; do
    [[ -f $file ]] || continue
    if [[ $file == *.sh ]] || head -n 1 "$file" | grep -qE '^#!.*[/ ](ba)?sh$'; then
      printf '%s\0' "$file"
    fi
  done < <(git ls-files -z)
}

lint() {
  # ruff and mypy read their settings (rules, files, justified exclusions) from pyproject.toml.
  local status=0
  ruff check src localnet/src benchmarks tests enclave ansible_plugins "$collection/plugins" || status=1
  mypy || status=1
  shell_scripts | xargs -0 shellcheck -x || status=1
  return "$status"
}

# The gates' functions and paths, for the shell each gate runs in.
export root collection
export -f ansible_test pytest_gate collection_build shell_scripts lint
# Budgets with room over each gate's time here (molecule ~17 min, pytest ~11 min): one hung gate still leaves
# the others their time inside CI's 90 minutes.
gate ansible-lint 300 ansible-lint --profile production
gate lint 300 lint
gate collection-build 300 collection_build
gate sanity 600 ansible_test sanity --venv --python 3.11 --requirements
gate units 300 ansible_test units --local --python 3.11
gate move 300 bash move/check.sh
gate molecule 1800 molecule test --all
# Two workers, whole files each: a file's tests share their fixtures (private nodes, servers, hosts).
gate pytest 2100 pytest_gate -n 2 --dist loadfile --durations=25 tests

printf '\n==> gates passed: %s\n' "${passed[*]:-none}"
if [ "${#failed[@]}" -gt 0 ]; then
  printf '==> gates FAILED: %s\n' "${failed[*]}"
  exit 1
fi
