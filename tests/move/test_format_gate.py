"""move/check.sh: the Move format gate passes on the tree and fails, naming the file, otherwise.

The gate runs the real formatter (prettier + @mysten/prettier-plugin-move from move/node_modules,
installed by `npm ci --prefix move`). Copies of the package in a temp dir get a broken or an
unformatted file. `sui` is kept off PATH so these runs exercise the format gate and the SKIPPED
report only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MOVE_DIR = REPO / "move"
CHECK = MOVE_DIR / "check.sh"
PRETTIER = MOVE_DIR / "node_modules" / ".bin" / "prettier"


def path_without_sui() -> str:
    return os.pathsep.join(
        entry for entry in os.environ.get("PATH", "").split(os.pathsep) if not (Path(entry) / "sui").exists()
    )


def run_gate(package_dir: Path | None = None, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert PRETTIER.exists(), "formatter not installed: run `npm ci --prefix move` (scripts/setup.sh does)"
    args = ["bash", str(CHECK)] + ([str(package_dir)] if package_dir else [])
    search_path = path_without_sui()
    if extra_path:
        search_path = f"{extra_path}{os.pathsep}{search_path}"
    env = {**os.environ, "PATH": search_path}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=False)


def stub_sui(bin_dir: Path, exit_code: int) -> Path:
    """A stand-in `sui` that logs its arguments: the real CLI cannot be installed here."""
    bin_dir.mkdir()
    log = bin_dir / "calls.log"
    sui = bin_dir / "sui"
    sui.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexit {exit_code}\n')
    sui.chmod(0o755)
    return log


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "k3s_daas"
    copy.mkdir()
    shutil.copy(MOVE_DIR / "Move.toml", copy)
    for sub in ("sources", "tests"):
        shutil.copytree(MOVE_DIR / sub, copy / sub)
    return copy


def test_gate_passes_on_the_tree_and_reports_the_skipped_sui_steps() -> None:
    result = run_gate()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED: format gate" in result.stdout
    assert "SKIPPED: sui move build (no sui binary on PATH)" in result.stdout
    assert "SKIPPED: sui move test (no sui binary on PATH)" in result.stdout


def test_gate_passes_on_an_unchanged_copy(package_copy: Path) -> None:
    # The negative tests below are only meaningful if the copy itself is clean.
    result = run_gate(package_copy)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gate_fails_on_a_file_that_does_not_parse(package_copy: Path) -> None:
    source = package_copy / "sources" / "registry.move"
    # Drop the closing parenthesis of a call: a syntax error, not a style issue.
    text = source.read_text()
    broken = text.replace("registry.has_current_enclave()", "registry.has_current_enclave(", 1)
    assert broken != text
    source.write_text(broken)
    result = run_gate(package_copy)
    assert result.returncode != 0
    assert "FAILED: format gate" in result.stdout
    assert "sources/registry.move" in result.stderr


def test_gate_fails_on_an_unformatted_file(package_copy: Path) -> None:
    test_file = package_copy / "tests" / "staking_tests.move"
    text = test_file.read_text()
    # Two-space indentation instead of four: still valid Move, wrong style.
    test_file.write_text(text.replace("\n    ", "\n  "))
    result = run_gate(package_copy)
    assert result.returncode != 0
    assert "FAILED: format gate" in result.stdout
    assert "tests/staking_tests.move" in result.stdout + result.stderr


def test_gate_ignores_sui_build_output(package_copy: Path) -> None:
    # `sui move build` copies framework sources into build/; they are not ours to format.
    dependency = package_copy / "build" / "k3s_daas" / "sources" / "dependencies" / "Sui" / "clock.move"
    dependency.parent.mkdir(parents=True)
    dependency.write_text("module   sui::clock;\n")
    result = run_gate(package_copy)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gate_runs_sui_build_and_test_when_sui_is_on_path(package_copy: Path, tmp_path: Path) -> None:
    log = stub_sui(tmp_path / "bin", exit_code=0)
    result = run_gate(package_copy, extra_path=tmp_path / "bin")
    assert result.returncode == 0, result.stdout + result.stderr
    assert log.read_text().splitlines() == [f"move build --path {package_copy}", f"move test --path {package_copy}"]
    assert "PASSED: sui move build" in result.stdout
    assert "PASSED: sui move test" in result.stdout
    assert "SKIPPED" not in result.stdout


def test_gate_fails_when_sui_move_test_fails(package_copy: Path, tmp_path: Path) -> None:
    stub_sui(tmp_path / "bin", exit_code=1)
    result = run_gate(package_copy, extra_path=tmp_path / "bin")
    assert result.returncode != 0
    assert "FAILED: sui move build" in result.stdout
    assert "FAILED: sui move test" in result.stdout
