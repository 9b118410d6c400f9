#!/usr/bin/env bash
# The main job on this machine: bring the local environment up, then deploy everything to the
# default inventory (inventories/local). Extra arguments go to ansible-playbook (e.g. --check, -v).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
exec ansible-playbook playbooks/deploy-all.yml "$@"
