"""Checks that keep the collection coherent as it grows (what antsibull-nox and prometheus CI check)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "collections" / "ansible_collections" / "k3sdaas" / "core"
BIN = Path(sys.executable).parent
MODULES = sorted(p.stem for p in (COLLECTION / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
ROLES = sorted(p.name for p in (COLLECTION / "roles").iterdir() if p.is_dir())


def ansible_env() -> dict[str, str]:
    return {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"), "ANSIBLE_NOCOLOR": "1"}


def test_action_groups_split_the_modules_by_connection():
    groups = yaml.safe_load((COLLECTION / "meta" / "runtime.yml").read_text())["action_groups"]
    members = {name: sorted(m for m in entries if isinstance(m, str)) for name, entries in groups.items()}
    grouped = [m for entries in members.values() for m in entries]
    assert sorted(grouped) == sorted(set(grouped)) and set(grouped) <= set(MODULES)  # real modules, once each
    assert set(members["sui"]) >= {m for m in MODULES if m.startswith(("sui_", "seal_"))}
    assert members["nitro"] == ["nitro_enclave"]
    assert members["aws"] == ["ec2_enclave_instance"]
    metadata = [entry["metadata"] for entry in groups["aws"] if isinstance(entry, dict)]
    assert metadata == [{"extend_group": ["amazon.aws.aws"]}]
    for module in MODULES:  # the documented membership is the real one
        source = (COLLECTION / "plugins" / "modules" / f"{module}.py").read_text()
        documented = [name for name in groups if f"k3sdaas.core.attributes.actiongroup_{name}\n" in source]
        assert documented == [name for name, entries in members.items() if module in entries], module


@pytest.mark.parametrize("module", MODULES)
def test_module_docs_render(module):
    out = subprocess.run(
        [BIN / "ansible-doc", "--json", f"k3sdaas.core.{module}"],
        capture_output=True, text=True, env=ansible_env(), check=True,
    )
    doc = json.loads(out.stdout)[f"k3sdaas.core.{module}"]
    assert doc["doc"]["short_description"]
    assert doc["examples"].strip()
    assert doc["return"]
    assert doc["doc"]["attributes"]["check_mode"]["support"] in {"full", "partial"}


@pytest.mark.parametrize("role", ROLES)
def test_role_argument_specs_match_defaults(role):
    path = COLLECTION / "roles" / role
    spec = yaml.safe_load((path / "meta" / "argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"].get("options", {})
    defaults_file = path / "defaults" / "main.yml"
    defaults = (yaml.safe_load(defaults_file.read_text()) or {}) if defaults_file.exists() else {}
    assert sorted(defaults) == sorted(name for name, opt in options.items() if not opt.get("required"))
    assert all(name.startswith(f"{role}_") for name in options), "role variables must carry the role's prefix"


def test_changelog_fragments_are_valid():
    out = subprocess.run([BIN / "antsibull-changelog", "lint"], cwd=COLLECTION, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/test.sh" in readme
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci == ["exec bash scripts/test.sh"]


def test_readme_lists_every_module_and_role():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in MODULES + ROLES if f"`{name}`" not in readme]
    assert not missing, f"README.md does not mention {missing}"
