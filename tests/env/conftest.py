"""Fixtures for the local-environment tests. pytest runs with --import-mode=importlib, so helpers
reach the tests as the `env_tools` fixture rather than by import."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from helpers.playbook import REPO, VENV_BIN, ansible_env, run_playbook


class EnvTools:
    """Runs the repo's tools the way a user does: from the repo root, with the venv first on PATH."""

    repo = REPO
    venv_bin = VENV_BIN

    def env(self, **extra: str) -> dict[str, str]:
        return ansible_env(**extra)

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
        """Run a playbook that must succeed; returns the per-host stats (ok, changed, failures...)."""
        run = run_playbook(playbook, *args)
        assert run.returncode == 0, f"{playbook} exited {run.returncode}\n{run.output}"
        return run.stats

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
