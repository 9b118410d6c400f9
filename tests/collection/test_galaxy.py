"""What Galaxy and Automation Hub import: galaxy.yml's README exists and names everything, and the tarball
holds what users run and nothing of the repository's tests and caches. The `collection-build` gate of
scripts/test.sh then installs that tarball and runs ansible-doc and a module from it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "collections" / "ansible_collections" / "k3sdaas" / "core"
BIN = Path(sys.executable).parent


def names(kind: str) -> list[str]:
    if kind == "modules":
        return sorted(p.stem for p in (COLLECTION / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
    return sorted(p.name for p in (COLLECTION / "roles").iterdir() if p.is_dir())


def test_readme_named_by_galaxy_yml_lists_every_module_and_role() -> None:
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
    readme = (COLLECTION / galaxy["readme"]).read_text()
    missing = [name for name in names("modules") + names("roles") if f"`k3sdaas.core.{name}`" not in readme]
    assert not missing, f"{galaxy['readme']} of the collection does not mention {missing}"
    assert "https://github.com/k3sdaas/k3s-daas" in readme  # the way to the project's README


def test_tarball_holds_what_users_run_and_no_tests_or_caches(tmp_path: Path) -> None:
    # a copy, with a tool cache where developers' tools leave them, to prove build_ignore drops them
    source = tmp_path / "core"
    shutil.copytree(COLLECTION, source, ignore=shutil.ignore_patterns("output"))
    (source / "plugins" / ".ruff_cache").mkdir()
    (source / "plugins" / ".ruff_cache" / "probe").write_text("x")
    subprocess.run([BIN / "ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), str(source)],
                   capture_output=True, text=True, check=True)
    (tarball,) = tmp_path.glob("k3sdaas-core-*.tar.gz")
    with tarfile.open(tarball) as tar:
        members = tar.getnames()
    assert "README.md" in members and "meta/runtime.yml" in members
    assert {f"plugins/modules/{name}.py" for name in names("modules")} <= set(members)
    assert {f"roles/{name}/tasks/main.yml" for name in names("roles")} <= set(members)
    unwanted = [m for m in members if m.split("/")[0] == "tests" or "cache" in m or m.endswith((".pyc", ".tar.gz"))]
    assert not unwanted, unwanted
