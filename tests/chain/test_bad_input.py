"""Bad connection settings and key files: a typed error naming the setting, bounded in time and memory."""

from __future__ import annotations

import asyncio
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from k3sdaas.chain import ChainClient, ChainSettings, InvalidKey, RpcUnavailable, load_build_output
from k3sdaas.chain.errors import InvalidArgument
from k3sdaas.chain.keys import MAX_KEY_FILE_BYTES, signer_from_file
from k3sdaas.chain.transport import MAX_TOTAL_BACKOFF, backoff_delays
from k3sdaas_localnet.sui.testing import LocalNode

from .conftest import new_signer


def settings(**overrides: object) -> ChainSettings:
    return ChainSettings(**{"rpc_url": "127.0.0.1:9", "signer": new_signer(), **overrides})  # type: ignore[arg-type]


def free_port() -> int:
    """A port nothing listens on: bound once to get it, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("timeout", math.nan), ("timeout", math.inf), ("timeout", 0.0), ("timeout", -1.0), ("timeout", 1e9),
        ("retries", -1), ("retries", 11), ("retries", 2000),
        ("rpc_url", "https://[::1"), ("rpc_url", "https://[::1]:99999"), ("rpc_url", "http://node:9000"),
        ("rpc_url", ""),
    ],
)
def test_out_of_range_settings_are_refused_naming_the_option(option: str, value: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        settings(**{option: value})
    assert caught.value.field == option


@pytest.mark.parametrize("kind", ["not-pem", "directory", "device", "missing"])
def test_a_bad_ca_file_is_refused_before_connecting(tmp_path: Path, kind: str) -> None:
    path = {"not-pem": tmp_path / "ca.pem", "directory": tmp_path, "device": Path("/dev/zero"),
            "missing": tmp_path / "nope.pem"}[kind]
    if kind == "not-pem":
        path.write_text("this is not a certificate\n")
    with pytest.raises(InvalidArgument) as caught:
        settings(ca_file=str(path))
    assert caught.value.field == "ca_file"


def test_backoff_is_capped_per_wait_and_in_total() -> None:
    for retries in range(11):
        delays = backoff_delays(settings(retries=retries))
        assert sum(delays) <= MAX_TOTAL_BACKOFF
        assert delays == sorted(delays)
    assert backoff_delays(settings(retries=2, retry_delay=0.5)) == [0.5, 1.0]


def test_retries_against_an_unreachable_node_end_in_bounded_time() -> None:
    # Before the cap, retries=8 slept 0.5 * (2**8 - 1) = 127.5 s and retries=10 over 8 minutes.
    unreachable = settings(rpc_url=f"127.0.0.1:{free_port()}", retries=10, timeout=1.0)

    async def connect() -> None:
        async with ChainClient(unreachable):
            pass

    started = time.monotonic()
    with pytest.raises(RpcUnavailable, match="unreachable after"):
        asyncio.run(asyncio.wait_for(connect(), MAX_TOTAL_BACKOFF + 10))
    assert time.monotonic() - started < MAX_TOTAL_BACKOFF + 5


def test_no_ca_against_a_self_signed_node_names_ca_file(node: LocalNode) -> None:
    async def connect() -> None:
        async with ChainClient(settings(rpc_url=node.url, retries=0)):
            pass

    with pytest.raises(InvalidArgument, match="not trusted") as caught:
        asyncio.run(connect())
    assert caught.value.field == "ca_file"


# ----- key files ---------------------------------------------------------------------------------


def test_dev_zero_as_key_file_is_refused_without_reading(tmp_path: Path) -> None:
    # Run under a 1 GiB address-space limit: the old code read /dev/zero until memory ran out.
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from k3sdaas.chain.keys import signer_from_file\n"
        "from k3sdaas.chain import InvalidKey\n"
        "try:\n    signer_from_file('/dev/zero')\n"
        "except InvalidKey as exc:\n    print(exc.field, exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("key_file ") and "not a regular file" in done.stdout


def test_a_fifo_key_file_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(InvalidKey, match="not a regular file"):
        signer_from_file(fifo)


def test_a_directory_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidKey) as caught:
        signer_from_file(tmp_path)
    assert caught.value.field == "key_file"


def test_a_huge_key_file_is_refused_by_its_size(tmp_path: Path) -> None:
    big = tmp_path / "big.key"
    with big.open("wb") as handle:
        handle.truncate(1 << 40)  # sparse: a terabyte that costs nothing unless it is read
    big.chmod(0o600)
    with pytest.raises(InvalidKey, match="at most"):
        signer_from_file(big)


def test_the_mode_is_checked_before_the_key_is_read(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text(new_signer().keystring)
    key.chmod(0o644)
    with pytest.raises(InvalidKey, match="chmod 600"):
        signer_from_file(key)
    key.chmod(0o600)
    assert signer_from_file(key).address.startswith("0x")
    assert MAX_KEY_FILE_BYTES >= 4096


@pytest.mark.parametrize("kind", ["directory", "device", "too-long", "missing", "huge"])
def test_a_bad_build_output_names_build_output(tmp_path: Path, kind: str) -> None:
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:
        handle.truncate(1 << 30)
    path = {"directory": str(tmp_path), "device": "/dev/zero", "too-long": "/" + "p" * 5000,
            "missing": str(tmp_path / "nope.json"), "huge": str(huge)}[kind]
    with pytest.raises(InvalidArgument) as caught:
        load_build_output(path)
    assert caught.value.field == "build_output" and str(caught.value).startswith("build_output ")
