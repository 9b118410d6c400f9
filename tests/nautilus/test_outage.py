"""Chain outage: live sessions stay valid, new logins answer 503 with the reason, recovery is automatic.

The Sui node runs as its own process here (`k3sdaas-localnet sui`), so it can be stopped and started
again on the same port and state.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from k3sdaas_localnet.sui.faucet import fund_address
from k3sdaas_localnet.sui.ledger import advance_clock

from .conftest import SUI, Chain, Master, free_port, new_signer, publish


@dataclass
class NodeProcess:
    """The node in a subprocess, with the LocalNode attributes the Chain helper uses."""

    state_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_path(self) -> Path:
        return self.state_dir / "tls" / "ca.pem"

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "k3sdaas_localnet", "sui", "--state",
                                         str(self.state_dir), "--port", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.time() < deadline and self.process.poll() is None, "Sui node did not start"
                time.sleep(0.1)

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(20)

    def faucet(self, address: str, amount: int) -> str:
        return fund_address(self.state_dir, address, amount)

    def advance_clock(self, ms: int) -> int:
        return advance_clock(self.state_dir, ms)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    node = NodeProcess(tmp_path_factory.mktemp("sui-process"), free_port())
    node.start()
    operator = new_signer()
    node.faucet(operator.address, 10_000 * SUI)
    try:
        yield Chain(node, operator, publish(node, operator))  # type: ignore[arg-type]
    finally:
        if node.process and node.process.poll() is None:
            node.stop()


def test_sessions_outlive_an_outage_logins_get_503_and_recover(master: Master, chain: Chain) -> None:
    node = chain.node
    assert isinstance(node, NodeProcess)
    owner, token = chain.stake(1)
    session = master.login(owner, token.token_id)
    node.stop()
    try:
        assert master.get("/api/v1/security-context", session).status_code == 200
        response = master.client.post("/api/v1/auth", json=master.proof(owner, token.token_id))
        assert response.status_code == 503
        assert response.json()["error"] == "chain_unavailable"
        assert "unreachable" in response.json()["reason"]
        deadline = time.time() + 10
        while master.get("/health").json()["chain"]["available"]:
            assert time.time() < deadline
            time.sleep(0.1)
        assert master.get("/health").json()["chain"]["error"]
        assert master.get("/api/v1/security-context", session).status_code == 200
    finally:
        node.start()
    deadline = time.time() + 15
    while (status := master.client.post("/api/v1/auth", json=master.proof(owner, token.token_id))).status_code != 200:
        assert status.status_code == 503 and time.time() < deadline, status.text
        time.sleep(0.2)
    deadline = time.time() + 10
    while not master.get("/health").json()["chain"]["available"]:
        assert time.time() < deadline
        time.sleep(0.1)
