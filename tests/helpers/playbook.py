"""The one way the test suites run `ansible-playbook`: as a user does, from the repository root with the
venv's tools, the repository's collections, and (by default) the JSON callback so results can be read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class PlaybookRun:
    """One finished run: exit status, output and, with the JSON callback, the parsed report."""

    command: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @cached_property
    def report(self) -> dict[str, Any]:
        """The ansible.posix.json report; a run that printed none fails the test with its output."""
        try:
            report: dict[str, Any] = json.loads(self.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"ansible-playbook printed no JSON (rc {self.returncode}):\n{self.output}")
        return report

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        stats: dict[str, dict[str, int]] = self.report["stats"]
        return stats

    def results(self, host: str = "localhost") -> Iterator[tuple[str, dict[str, Any]]]:
        """(task name, result) of every task that ran on ``host``, in order."""
        for play in self.report["plays"]:
            for task in play["tasks"]:
                if host in task["hosts"]:
                    yield task["task"]["name"], task["hosts"][host]

    def first_failure(self) -> dict[str, Any] | None:
        for play in self.report["plays"]:
            for task in play["tasks"]:
                for result in task["hosts"].values():
                    if result.get("failed"):
                        return dict(result)
        return None


def ansible_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell with the venv first on PATH and this repository's collections."""
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
        "ANSIBLE_NOCOLOR": "1",
        **extra,
    }


def run_playbook(
    playbook: str | Path,
    *options: str,
    extra_vars: Mapping[str, Any] | None = None,
    inventory: str | None = None,
    local: bool = False,
    check: bool = False,
    diff: bool = False,
    json_report: bool = True,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> PlaybookRun:
    """Run ``playbook`` (a path or a collection playbook's FQCN) and return what it did.

    ``inventory`` None keeps ansible.cfg's (inventories/local); ``local`` runs on ``localhost,`` over the
    local connection with this interpreter; ``env`` adds to :func:`ansible_env`.
    """
    command = [str(VENV_BIN / "ansible-playbook"), str(playbook), *options]
    if local:
        inventory = inventory or "localhost,"
        command += ["-c", "local", "-e", json.dumps({"ansible_python_interpreter": sys.executable})]
    if inventory:
        command += ["-i", inventory]
    if extra_vars:
        command += ["-e", json.dumps(dict(extra_vars))]
    command += ["--check"] if check else []
    command += ["--diff"] if diff else []
    callback = "ansible.posix.json" if json_report else "ansible.builtin.default"
    done = subprocess.run(command, cwd=REPO, env=ansible_env(ANSIBLE_STDOUT_CALLBACK=callback, **(env or {})),
                          capture_output=True, text=True, timeout=timeout, check=False)
    return PlaybookRun(command, done.returncode, done.stdout, done.stderr)
