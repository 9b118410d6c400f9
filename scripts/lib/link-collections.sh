#!/usr/bin/env bash
# Symlink the collections k3sdaas.core depends on from the `ansible` package bundled in .venv into
# collections/ansible_collections/<namespace>/<name>. ansible-playbook finds them on sys.path anyway,
# but ansible-test only looks next to the collection under test, so sanity and units need the links.
# The list is derived, not hard-coded: galaxy.yml `dependencies`, requirements.yml `collections`,
# and, transitively, each linked collection's own MANIFEST.json dependencies.
# Idempotent: a correct link is left alone, a stale link is replaced, a real directory is refused.
# Usage: scripts/lib/link-collections.sh [PYTHON]   (default: <repo>/.venv/bin/python)
set -Eeuo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$repo/scripts/lib/common.sh"
python=${1:-$repo/.venv/bin/python}
target_root=$repo/collections/ansible_collections

[[ -x $python ]] || die "python not found at $python (run scripts/setup.sh first)"

# Prints "<namespace.name> <source dir>" per collection to link; fails naming a missing dependency.
resolve() {
  "$python" - "$repo" <<'PY'
import json
import pathlib
import sys

import ansible_collections
import yaml

repo = pathlib.Path(sys.argv[1])
bundled = pathlib.Path(next(iter(ansible_collections.__path__)))
galaxy = yaml.safe_load((repo / "collections/ansible_collections/k3sdaas/core/galaxy.yml").read_text())
wanted = list(galaxy.get("dependencies") or {})
requirements = repo / "requirements.yml"
if requirements.exists():
    for entry in yaml.safe_load(requirements.read_text()).get("collections") or []:
        wanted.append(entry["name"] if isinstance(entry, dict) else entry)

seen: dict[str, pathlib.Path] = {}
while wanted:
    fqcn = wanted.pop()
    if fqcn in seen or fqcn == "k3sdaas.core":
        continue
    namespace, name = fqcn.split(".")
    source = bundled / namespace / name
    manifest = source / "MANIFEST.json"
    if not manifest.is_file():
        sys.exit(f"collection {fqcn} is not bundled in {bundled} (is the `ansible` package installed?)")
    seen[fqcn] = source
    wanted.extend(json.loads(manifest.read_text())["collection_info"].get("dependencies") or {})

for fqcn in sorted(seen):
    print(fqcn, seen[fqcn])
PY
}

links=$(resolve) || die "could not resolve the collections to link"
while read -r fqcn source; do
  link=$target_root/${fqcn/./\/}
  if [[ -L $link && $(readlink "$link") == "$source" ]]; then
    say "$fqcn already linked"
    continue
  fi
  [[ -e $link && ! -L $link ]] && die "$link exists and is not a symlink; refusing to replace it"
  mkdir -p "$(dirname "$link")"
  ln -sfn "$source" "$link"
  say "linked $fqcn -> $source"
done <<<"$links"
