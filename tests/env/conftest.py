"""Fixtures for the local-environment tests. pytest runs with --import-mode=importlib, so helpers
reach the tests as the `env_tools` fixture rather than by import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest


class EnvTools:
    """Runs the repo's tools the way a user does: from the repo root, with the venv first on PATH."""

    repo = Path(__file__).resolve().parents[2]
    venv_bin = Path(sys.executable).parent

    def env(self, **extra: str) -> dict[str, str]:
        path = f"{self.venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**os.environ, "PATH": path, "ANSIBLE_NOCOLOR": "1", **extra}

    def run(
        self, args: Sequence[str | Path], *, check: bool = True, **extra_env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run a command; with check, a failure shows the command's output in the assertion."""
        result = subprocess.run(
            [str(a) for a in args],
            cwd=self.repo,
            env=self.env(**extra_env),
            capture_output=True,
            text=True,
            check=False,
        )
        if check:
            assert result.returncode == 0, f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    def run_playbook(self, playbook: str | Path, *args: str) -> dict[str, dict[str, int]]:
        """Run a playbook with the JSON callback; returns the per-host stats (ok, changed, failures...)."""
        result = self.run(
            [self.venv_bin / "ansible-playbook", playbook, *args], ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"
        )
        stats: dict[str, dict[str, int]] = json.loads(result.stdout)["stats"]
        return stats

    def bash_lib(self, snippet: str) -> str:
        """Output of a bash snippet run after sourcing scripts/lib/common.sh."""
        return self.run(["bash", "-c", f"source scripts/lib/common.sh && {snippet}"]).stdout

    def wait_for_systemd(self, container: str, timeout: float = 60) -> str:
        """systemd's state once boot has finished (running/degraded), or the last state seen at timeout."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            # Right after start the exec can beat systemd's bus and print nothing; ask again then.
            state = self.run(
                ["docker", "exec", container, "timeout", str(int(timeout)), "systemctl", "is-system-running", "--wait"],
                check=False,
            ).stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.5)
        return state

    def inspect(self, kind: str, name: str) -> dict[str, Any] | None:
        """`docker <kind> inspect NAME` as a dict, or None when it does not exist."""
        result = self.run(["docker", kind, "inspect", name], check=False)
        return json.loads(result.stdout)[0] if result.returncode == 0 else None


@pytest.fixture(scope="session")
def env_tools() -> EnvTools:
    return EnvTools()


@pytest.fixture(scope="session")
def docker_engine(env_tools: EnvTools) -> None:
    """Docker tests fail (not skip) without an engine: scripts/setup.sh is meant to have run."""
    if env_tools.run(["docker", "info"], check=False).returncode != 0:
        pytest.fail("Docker engine not reachable: run scripts/setup.sh first, or deselect with -m 'not docker'")
