"""k3sdaas-attest with bad arguments: always exit 1 with one line on stderr, never a traceback or usage block."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import FIXTURES

VALID = str(FIXTURES / "valid-attestation-doc-bytes")
VALID_AT = "2022-10-13T08:58:02.136Z"


def attest(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k3sdaas.attestation.cli", *args], input=stdin,
                          capture_output=True, timeout=60, check=False, text=stdin is None)


def assert_one_line_exit_1(done: subprocess.CompletedProcess[str], expected: str) -> None:
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.endswith("\n"), done.stderr
    assert "Traceback" not in done.stderr and "usage:" not in done.stderr
    assert expected in done.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--root", "/nope.pem"], "cannot read root /nope.pem"),
        (["--root", "/dev/zero"], "not a regular file"),
        (["--root", "/"], "not a regular file"),
        (["--pcr", "0=zz"], "argument --pcr"),
        (["--pcr", "x"], "argument --pcr"),
        (["--pcr", "2=" + "00" * 47], "argument --pcr"),
        (["--pcr", "99999999999999999999=00"], "argument --pcr"),
        (["--at", "yesterday"], "argument --at"),
        (["--at", "2022-10-13T08:58:02"], "no time zone"),
        (["--nonce", "xyz"], "argument --nonce"),
        (["--nonce"], "argument --nonce"),
        (["--public-key", "0"], "argument --public-key"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_verify_arguments(args: list[str], expected: str) -> None:
    assert_one_line_exit_1(attest("verify", VALID, "--at", VALID_AT, *args), expected)


@pytest.mark.parametrize(
    ("args", "expected"),
    [([], "required"), (["frobnicate"], "invalid choice"), (["verify"], "required"), (["verify", "/dev/zero"],
                                                                                       "not a regular file")],
)
def test_bad_commands(args: list[str], expected: str) -> None:
    assert_one_line_exit_1(attest(*args), expected)


def test_inputs_are_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big.b64"
    with big.open("wb") as handle:
        handle.truncate(1 << 30)  # sparse
    assert_one_line_exit_1(attest("verify", str(big)), "larger than")
    done = attest("verify", "-", stdin=b"A" * (1 << 20))
    assert done.returncode == 1 and done.stderr.count(b"\n") == 1 and b"larger than" in done.stderr


def test_a_fifo_document_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "doc"
    os.mkfifo(fifo)
    assert_one_line_exit_1(attest("verify", str(fifo)), "not a regular file")
