"""enclave/enclave.lock.json against this repository, without Docker: what comes from the repository is the
same on every machine, so a lock that disagrees with it is stale, not "built elsewhere"."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "enclave" / "enclave.lock.json"
REGENERATE = "run `.venv/bin/python enclave/build.py` and commit enclave/enclave.lock.json"


@pytest.fixture(scope="module")
def build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("enclave_build", REPO / "enclave" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lock_matches_the_repository(build: ModuleType, tmp_path: Path) -> None:
    locked = json.loads(LOCK.read_text())["inputs"]
    current = build.repository_inputs(tmp_path / "stage")
    stale = sorted(key for key, value in current.items() if locked.get(key) != value)
    assert not stale, f"enclave/enclave.lock.json is stale ({', '.join(stale)} changed): {REGENERATE}"


def test_staged_source_has_no_caches_and_fixed_modes(build: ModuleType, tmp_path: Path) -> None:
    build.repository_inputs(tmp_path / "stage")
    staged = sorted(p.relative_to(tmp_path / "stage" / "src") for p in (tmp_path / "stage" / "src").rglob("*")
                    if p.is_file())
    expected = sorted(p.relative_to(REPO / "src") for p in (REPO / "src" / "k3sdaas").rglob("*")
                      if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    assert staged == expected
    assert {(tmp_path / "stage" / "src" / p).stat().st_mode & 0o777 for p in staged} == {0o644}


def test_source_digest_ignores_tool_settings_and_extras_but_not_dependencies(build: ModuleType) -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    staged = build.staged_pyproject(pyproject)
    assert "[tool.setuptools.packages.find]" in staged and "dependencies = [" in staged
    assert "[project.optional-dependencies]" not in staged and "[tool.pytest" not in staged
    edited = pyproject.replace("[tool.ruff]\n", "[tool.ruff]\nfix = true\n") + '[[tool.mypy.overrides]]\nmodule = "x"\n'
    assert build.staged_pyproject(edited) == staged
    assert build.staged_pyproject(pyproject.replace('"pysui==1.5.1"', '"pysui==1.5.2"')) != staged
