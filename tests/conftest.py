"""Policies of the whole test suite.

Docker: a test that needs the engine carries the `docker` marker and FAILS when the engine is missing,
because scripts/setup.sh is meant to have started it; a skip would turn a broken environment green.
Deselect such tests explicitly with `-m 'not docker'`.
"""

from __future__ import annotations

import functools
import subprocess

import pytest

NO_ENGINE = "Docker engine not reachable: run scripts/setup.sh first, or deselect with -m 'not docker'"


@functools.cache
def docker_problem() -> str | None:
    """Why `docker info` does not answer, or None when the engine is up (asked once per session)."""
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else done.stderr.strip()[-500:]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("docker") and (problem := docker_problem()) is not None:
        pytest.fail(f"{NO_ENGINE}\n{problem}")


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """For fixtures that need the engine outside a `docker`-marked test: the same check."""
    if (problem := docker_problem()) is not None:
        pytest.fail(f"{NO_ENGINE}\n{problem}")
