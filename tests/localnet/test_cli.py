"""``k3sdaas-localnet sui`` as a separate process: start, serve a pysui client, faucet from a third process."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pysui.sui.sui_common.sui_commands as cmd
import pytest

from k3sdaas_localnet.sui.node import NodeInfo
from k3sdaas_localnet.sui.testing import LocalNode, make_account, running_node

SUI = 1_000_000_000


def localnet(*args: str) -> list[str]:
    return [sys.executable, "-m", "k3sdaas_localnet", "sui", *args]


@pytest.fixture
def cli_node(tmp_path: Path) -> Iterator[LocalNode]:
    state = tmp_path / "chain"
    process = subprocess.Popen(localnet("--state", str(state), "--port", "0"), stdout=subprocess.PIPE, text=True)
    try:
        endpoint = process.stdout.readline().strip()
        ca_line = process.stdout.readline().strip()
        assert endpoint.startswith("k3sdaas-localnet sui listening on https://127.0.0.1:"), endpoint
        ca_path = Path(ca_line.removeprefix("CA certificate: "))
        assert ca_path == state / "tls" / "ca.pem" and ca_path.exists()
        info = NodeInfo("127.0.0.1", int(endpoint.rsplit(":", 1)[1]), ca_path, state)
        yield LocalNode(info, list)
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0, "SIGTERM should stop the node cleanly"


async def test_a_client_sees_coins_minted_by_another_process(cli_node: LocalNode, tmp_path: Path) -> None:
    account = make_account(cli_node, tmp_path / "alice")
    faucet = await asyncio.create_subprocess_exec(
        *localnet("--state", str(cli_node.state_dir), "faucet", account.address, "--amount", str(3 * SUI)),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await faucet.communicate()
    assert faucet.returncode == 0
    digest = out.decode().strip()
    async with account.client() as client:
        balance = await client.execute(command=cmd.GetAddressCoinBalance(owner=account.address))
        assert balance.result_data.balance.balance == 3 * SUI
        minted = await client.execute(command=cmd.GetTransaction(digest=digest))
        assert minted.is_ok() and minted.result_data.balance_changes[0].amount == str(3 * SUI)
        txn = await client.transaction()
        await txn.transfer_sui(recipient="0x" + "ef" * 32, from_coin=txn.gas, amount=SUI)
        signed = await txn.build_and_sign()
        executed = await client.execute(command=cmd.ExecuteTransaction(**signed))
        assert executed.is_ok() and executed.result_data.effects.status.success


def test_bad_faucet_address_names_the_field(tmp_path: Path) -> None:
    result = subprocess.run(localnet("--state", str(tmp_path / "chain"), "faucet", "0xZZ"),
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "faucet: not a Sui address" in result.stderr and "Traceback" not in result.stderr


async def test_http_faucet_speaks_the_sui_faucet_api(tmp_path: Path) -> None:
    with running_node(tmp_path / "chain", http_faucet=True) as node:
        account = make_account(node, tmp_path / "alice")
        assert node.info.faucet_url is not None
        async with httpx.AsyncClient() as http:
            sent = await http.post(node.info.faucet_url, json={"FixedAmountRequest": {"recipient": account.address}})
            bad = await http.post(node.info.faucet_url, json={"FixedAmountRequest": {"recipient": "0xZZ"}})
        assert sent.status_code == 200 and sent.json()["status"] == "Success"
        coin = sent.json()["coins_sent"][0]
        assert bad.status_code == 400 and "recipient" in bad.json()["status"]["Failure"]["Internal"]
        async with account.client() as client:
            obj = await client.execute(command=cmd.GetObject(object_id=coin["id"]))
            assert obj.result_data.balance == coin["amount"] and obj.result_data.owner.address == account.address


def test_node_exits_with_a_clear_error_when_its_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(localnet("--state", str(tmp_path / "chain"), "--port", str(port)),
                              capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr


def _handshake(port: int, ca_path: Path, address: str) -> str | None:
    """None when TLS to ``address`` verifies against the node's CA (the name checked is the address dialled)."""
    context = ssl.create_default_context(cafile=str(ca_path))
    context.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((address, port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname=address):
            return None
    except ssl.SSLCertVerificationError as exc:
        return str(exc.verify_message)


def test_tls_san_names_another_address_and_keeps_the_ca(tmp_path: Path) -> None:
    state = tmp_path / "chain"

    def serve(*extra: str) -> tuple[subprocess.Popen[str], int]:
        process = subprocess.Popen(localnet("--state", str(state), "--host", "0.0.0.0", "--port", "0", *extra),
                                   stdout=subprocess.PIPE, text=True)
        endpoint = process.stdout.readline().strip()  # type: ignore[union-attr]
        return process, int(endpoint.rsplit(":", 1)[1])

    ca_path = state / "tls" / "ca.pem"
    process, port = serve()
    try:
        assert _handshake(port, ca_path, "127.0.0.1") is None
        assert _handshake(port, ca_path, "127.0.0.2") is not None  # loopback too, but not a name of the certificate
    finally:
        process.terminate()
        process.wait(timeout=10)
    ca = ca_path.read_bytes()

    process, port = serve("--tls-san", "127.0.0.2")
    try:
        assert _handshake(port, ca_path, "127.0.0.2") is None
        assert _handshake(port, ca_path, "127.0.0.3") is not None
        assert ca_path.read_bytes() == ca  # clients that pinned the CA keep working
    finally:
        process.terminate()
        process.wait(timeout=10)
