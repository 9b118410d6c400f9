"""The suite's Docker policy (tests/conftest.py): without an engine, a `docker` test fails (an error in its
setup, so the run exits non-zero) instead of skipping; tests without the marker are not affected."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
PROBE = """
import pytest

@pytest.mark.docker
def test_needs_the_engine():
    pass

def test_needs_nothing():
    pass
"""


def run_probe(tmp_path: Path, docker_host: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(ROOT_CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_probe.py").write_text(PROBE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    docker: needs Docker\n")
    env = {**os.environ, "DOCKER_HOST": docker_host, "COLUMNS": "250"}  # untruncated summary lines
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_docker_test_fails_without_an_engine(tmp_path: Path) -> None:
    done = run_probe(tmp_path, f"unix://{tmp_path}/no-docker.sock")
    assert done.returncode == 1, done.stdout
    assert "ERROR test_probe.py::test_needs_the_engine - Failed: Docker engine not reachable" in done.stdout
    assert "Docker engine not reachable: run scripts/setup.sh first" in done.stdout
    assert "PASSED test_probe.py::test_needs_nothing" in done.stdout
    assert "skipped" not in done.stdout
