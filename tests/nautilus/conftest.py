"""The master under test, for real: `python -m k3sdaas.nautilus serve` (granian, TLS 1.3) in a subprocess,
against a private Sui node stand-in, the Kubernetes stand-in and a simulated NSM of this module.

Helpers stake tokens through the ordinary ChainClient and log in the way a client does: challenge,
sign the challenge text with the Sui key (k3sdaas.seal), POST /api/v1/auth.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_crypto import create_new_keypair

from k3sdaas.chain import ChainClient, ChainSettings, Deployment, SealToken, Signer
from k3sdaas.chain.keys import signer_from_text
from k3sdaas.nitro.measure import measure_string
from k3sdaas.seal import Challenge, sign_personal_message
from k3sdaas_localnet.nitro.nsm_sim import NsmServer, SimulatedNsm, boot_pcrs
from k3sdaas_localnet.nitro.pki import SimulatedPki
from k3sdaas_localnet.sui.publish import module_markers
from k3sdaas_localnet.sui.testing import LocalNode, running_node

REPO = Path(__file__).resolve().parents[2]
SUI = 1_000_000_000
INSTANCE_ID = "i-0123456789abcdef0"
IMAGE_PCRS = (measure_string(b"kernel"), measure_string(b"bootstrap"), measure_string(b"nautilus"))


def new_signer() -> Signer:
    return signer_from_text(create_new_keypair(scheme=SignatureScheme.ED25519)[1].to_bech32())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@dataclass
class Chain:
    """The module's Sui node, its operator (AdminCap holder) and one published deployment."""

    node: LocalNode
    operator: Signer
    deployment: Deployment

    def settings(self, signer: Signer) -> ChainSettings:
        return ChainSettings(rpc_url=self.node.url, signer=signer, ca_file=str(self.node.ca_path), timeout=10.0,
                             retries=1, retry_delay=0.05)

    def funded(self, amount_sui: int = 100) -> Signer:
        signer = new_signer()
        self.node.faucet(signer.address, amount_sui * SUI)
        return signer

    def stake(self, amount_sui: float, *, owner: Signer | None = None, node_id: str | None = None,
              deployment: Deployment | None = None) -> tuple[Signer, SealToken]:
        """A token for a fresh node, staked by the operator, owned by ``owner`` (a fresh key by default)."""
        owner = owner or new_signer()

        async def go() -> SealToken:
            async with ChainClient(self.settings(self.operator), deployment or self.deployment) as client:
                return await client.stake(node_id or f"node-{uuid.uuid4().hex[:10]}", int(amount_sui * SUI),
                                          owner=owner.address)

        return owner, run(go())

    def slash(self, token_id: str, bps: int, reason: str = "test") -> SealToken:
        async def go() -> SealToken:
            async with ChainClient(self.settings(self.operator), self.deployment) as client:
                return await client.slash(token_id, bps, reason)

        return run(go())

    def call(self, signer: Signer, method: str, *args: Any) -> Any:
        async def go() -> Any:
            async with ChainClient(self.settings(signer), self.deployment) as client:
                return await getattr(client, method)(*args)

        return run(go())


def publish(node: LocalNode, operator: Signer) -> Deployment:
    modules = module_markers("k3s_daas", REPO / "move" / "sources", ["staking", "registry", "k8s_gateway"])

    async def go() -> Deployment:
        settings = ChainSettings(rpc_url=node.url, signer=operator, ca_file=str(node.ca_path), timeout=10.0)
        async with ChainClient(settings) as client:
            return await client.publish(modules, ["0x1", "0x2"])

    return run(go())


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    with running_node(tmp_path_factory.mktemp("sui")) as node:
        operator = new_signer()
        node.faucet(operator.address, 100_000 * SUI)
        yield Chain(node, operator, publish(node, operator))


@pytest.fixture(scope="module")
def kube_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the Kubernetes stand-in keeps admin.kubeconfig and ca.pem (the master reads them on first use)."""
    return tmp_path_factory.mktemp("kube")


def start_kube(state: Path) -> subprocess.Popen[bytes]:
    """The Kubernetes stand-in on a free port, once its admin.kubeconfig exists."""
    process = subprocess.Popen([sys.executable, "-m", "k3sdaas_localnet", "kube", "--state", str(state),
                                "--host", "127.0.0.1", "--port", str(free_port())],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while not (state / "admin.kubeconfig").exists():
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            errors = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"kube stand-in did not start: {errors}")
        time.sleep(0.1)
    return process


@pytest.fixture(scope="module")
def kube(kube_dir: Path) -> Iterator[Path]:
    """The Kubernetes stand-in, running; yields its state directory."""
    process = start_kube(kube_dir)
    yield kube_dir
    process.terminate()
    process.wait(10)


def simulated_nsm(path: str) -> tuple[NsmServer, SimulatedPki]:
    """A simulated NSM (fresh test CA) serving on the Unix socket ``path``; start it with ``with``."""
    pki = SimulatedPki.generate(INSTANCE_ID, datetime.now(UTC))
    nsm = SimulatedNsm(pki, f"{INSTANCE_ID}-enc0123456789abcdef",
                       boot_pcrs(*IMAGE_PCRS, instance_pcr=measure_string(INSTANCE_ID)))
    return NsmServer(nsm, path), pki


@pytest.fixture(scope="module")
def nsm_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, SimulatedPki]]:
    server, pki = simulated_nsm(str(tmp_path_factory.mktemp("nsm") / "nsm.sock"))
    with server:
        yield server.bound_address, pki


@dataclass
class Master:
    """A running master: its URL, the certificate to trust, and a client that trusts it."""

    url: str
    cert: Path
    process: subprocess.Popen[bytes]
    state: Path
    config_path: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, verify=ssl.create_default_context(cafile=self.cert),
                                   timeout=60.0)  # generous: the test machine is shared

    def stop(self) -> int:
        self.client.close()
        self.process.terminate()
        return self.process.wait(20)

    def proof(self, signer: Signer, token_id: str, **changes: Any) -> dict[str, Any]:
        """A signed seal proof for a fresh challenge; ``changes`` alter fields before signing."""
        nonce = self.client.post("/api/v1/challenge").json()["nonce"]
        fields = {"nonce": nonce, "audience": self.url, "token_id": token_id, "address": signer.address,
                  "issued_at_ms": int(time.time() * 1000), **changes}
        message = Challenge(**fields).message()
        return {"token_id": fields["token_id"], "address": fields["address"], "nonce": fields["nonce"],
                "issued_at": fields["issued_at_ms"], "audience": fields["audience"],
                "signature": sign_personal_message(signer, message)}

    def login(self, signer: Signer, token_id: str) -> str:
        response = self.client.post("/api/v1/auth", json=self.proof(signer, token_id))
        assert response.status_code == 200, response.text
        return str(response.json()["session"])

    def get(self, path: str, session: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {session}"} if session else {}
        return self.client.get(path, headers=headers)


def start_master(state: Path, settings: dict[str, Any], env: dict[str, str] | None = None) -> Master:
    state.mkdir(parents=True, exist_ok=True)
    config_path = state / "nautilus-config.yaml"
    config_path.write_text(yaml.safe_dump(settings))
    with open(state / "master.log", "ab") as log:  # the child keeps its own descriptor
        process = subprocess.Popen([sys.executable, "-m", "k3sdaas.nautilus", "serve", "--config", str(config_path)],
                                   stdout=subprocess.PIPE, stderr=log, env={**os.environ, **(env or {})})
    assert process.stdout is not None
    url = cert = None
    for _ in range(2):
        line = process.stdout.readline().decode()
        if "serving" in line:
            url = line.split("serving ", 1)[1].split()[0]
        elif "trust" in line:
            cert = Path(line.split("trust ", 1)[1].split()[0])
    if not url or not cert:
        process.kill()
        raise RuntimeError(f"master did not start: {(state / 'master.log').read_text()}")
    master = Master(url, cert, process, state, config_path)
    deadline = time.time() + 30
    while True:
        try:
            if master.client.get("/health").status_code == 200:
                return master
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            raise RuntimeError(f"master is not healthy: {(state / 'master.log').read_text()}")
        time.sleep(0.1)


def master_settings(chain: Chain, kube: Path, nsm: str, state_dir: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "server": {"listen_address": "127.0.0.1", "listen_port": 0},
        "sui": {"rpc_url": chain.node.url, "ca_file": str(chain.node.ca_path), "package_id":
                chain.deployment.package_id, "timeout": 3, "poll_interval": 0.2},
        "tee": {"nsm_socket": nsm},
        "k3s": {"kubeconfig": str(kube / "admin.kubeconfig"), "ca_file": str(kube / "ca.pem"),
                "supervisor_url": "https://127.0.0.1:6444"},
        "state": {"dir": str(state_dir)},
        "logging": {"level": "info"},
    }
    for section, values in sections.items():
        settings.setdefault(section, {}).update(values)
    return settings


@pytest.fixture(scope="module")
def make_master(chain: Chain, kube_dir: Path, nsm_socket: tuple[str, SimulatedPki],
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Master]]:
    started: list[Master] = []

    def make(state: Path | None = None, **sections: dict[str, Any]) -> Master:
        state = state or tmp_path_factory.mktemp("master")
        master = start_master(state, master_settings(chain, kube_dir, nsm_socket[0], state, **sections))
        started.append(master)
        return master

    yield make
    for master in started:
        if master.process.poll() is None:
            master.stop()


@pytest.fixture(scope="module")
def master(make_master: Callable[..., Master]) -> Master:
    return make_master()
