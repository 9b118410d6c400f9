"""nitro-cli-sim argument errors read and exit like nitro-cli's: E03 from the argument parser before anything
is printed or started, and clap's layout (exit 2) for arguments the parser does not know."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SIM = [sys.executable, "-m", "k3sdaas_localnet.nitro.cli"]


def sim(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, K3SDAAS_NITRO_SIM_STATE=str(tmp_path / "state"), NITRO_CLI_LOGS_PATH=str(tmp_path))
    return subprocess.run([*SIM, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("flags", "parameter", "value"),
    [
        (["--cpu-count", "0"], "cpu-count", "0"),
        (["--cpu-count", "-1"], "cpu-count", "-1"),
        (["--cpu-count", "4294967296"], "cpu-count", "4294967296"),  # above u32
        (["--cpu-count", "two"], "cpu-count", "two"),
        (["--cpu-count", "²"], "cpu-count", "²"),  # a digit to str.isdigit, not to Rust's parse
        (["--cpu-ids", "1", "-3"], "cpu-id", "-3"),
        (["--cpu-count", "2", "--enclave-cid", "-5"], "enclave-cid", "-5"),
        (["--cpu-count", "2", "--memory", "18446744073709551616"], "memory", "18446744073709551616"),
    ],
)
def test_bad_run_enclave_values_fail_in_the_parser(tmp_path: Path, flags: list[str], parameter: str,
                                                   value: str) -> None:
    args = ["run-enclave", "--eif-path", str(tmp_path / "app.eif"), "--memory", "512", *flags]
    done = sim(tmp_path, *args)
    assert done.returncode == 3, done.stderr
    assert done.stdout == ""
    first = done.stderr.splitlines()[0]
    assert first == f"[ E03 ] Invalid argument provided. The parameter `{parameter}` is not a valid integer (`{value}`)"
    assert "Start allocating memory" not in done.stderr  # refused before anything happens
    assert json.loads(sim(tmp_path, "describe-enclaves").stdout) == []


@pytest.mark.parametrize(
    ("args", "first_line"),
    [
        (["run-enclave", "--bogus"], "error: Found argument '--bogus' which wasn't expected, or isn't valid in this "
                                     "context"),
        (["frobnicate"], "error: argument command: invalid choice: 'frobnicate'"),
        (["run-enclave", "--cpu-count"], "error: argument --cpu-count: expected one argument"),
    ],
)
def test_unknown_arguments_read_like_clap(tmp_path: Path, args: list[str], first_line: str) -> None:
    done = sim(tmp_path, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(first_line)
    assert "\n\nUSAGE:\n    nitro-cli" in done.stderr and done.stderr.endswith("\n\nFor more information try --help\n")
    assert "Traceback" not in done.stderr
