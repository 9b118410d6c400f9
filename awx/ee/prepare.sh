#!/usr/bin/env bash
# Builds what execution-environment.yml copies into the image: the runtime wheel and the collection
# tarball, into DIST (default build/ee/dist). The wheel is built from a copy of the sources so the
# working tree gets no build leftovers.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dist=${1:-$root/build/ee/dist}
python=${PYTHON:-$root/.venv/bin/python}
galaxy=${ANSIBLE_GALAXY:-$root/.venv/bin/ansible-galaxy}

sources=$(mktemp -d)
trap 'rm -rf "$sources"' EXIT
cp "$root/pyproject.toml" "$root/README.md" "$sources/"
cp -r "$root/src" "$sources/src"
find "$sources/src" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +

rm -rf "$dist"
mkdir -p "$dist"
"$python" -m pip wheel --no-deps --quiet --disable-pip-version-check --wheel-dir "$dist" "$sources"
"$galaxy" collection build --force --output-path "$dist" "$root/collections/ansible_collections/k3sdaas/core"
ls "$dist"
