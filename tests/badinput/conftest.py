"""What the bad-input battery runs against: a private Sui node with a deployment and a staked node, a
private nitro-cli simulator, and a moto EC2 server, all on loopback with ephemeral ports."""

from __future__ import annotations

import asyncio
import datetime
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_crypto import create_new_keypair

from k3sdaas.chain import ChainClient, ChainSettings, Deployment, Signer, dump_build_output, load_build_output
from k3sdaas.chain.keys import signer_from_text
from k3sdaas_localnet.sui.publish import module_markers
from k3sdaas_localnet.sui.testing import LocalNode, running_node

REPO = Path(__file__).resolve().parents[2]
SUI = 1_000_000_000


def new_signer() -> Signer:
    return signer_from_text(create_new_keypair(scheme=SignatureScheme.ED25519)[1].to_bech32())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Chain:
    """The node, the operator's key file and deployment, and a node id with a live token already slashed
    once for ``slash_reason``, so that the baselines (stake 1 SUI, slash for that reason) change nothing."""

    node: LocalNode
    operator: Signer
    key_file: Path
    deployment: Deployment
    staked_node: str
    slash_reason: str = "battery"

    def settings(self) -> ChainSettings:
        return ChainSettings(rpc_url=self.node.url, signer=self.operator, ca_file=str(self.node.ca_path),
                             timeout=10.0, retries=0)

    def snapshot(self) -> dict[str, Any]:
        """Everything a wrongly accepted value could change: pool, balance, the staked node's token."""

        async def read() -> dict[str, Any]:
            async with ChainClient(self.settings(), self.deployment) as client:
                token = await client.find_token(self.staked_node)
                return {
                    "pool": (await client.pool_state()).as_dict(),
                    "balance": await client.balance(),
                    "token": {k: v for k, v in token.as_dict().items() if k != "seconds_left"} if token else None,
                }

        return asyncio.run(read())


@pytest.fixture(scope="session")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    folder = tmp_path_factory.mktemp("badinput-chain")
    build = folder / "k3s_daas.build.json"
    markers = module_markers("k3s_daas", REPO / "move" / "sources", ["staking", "registry", "k8s_gateway"])
    build.write_text(dump_build_output(markers, ["0x1", "0x2"]))
    with running_node(folder / "node") as node:
        operator = new_signer()
        node.faucet(operator.address, 1000 * SUI)
        key_file = folder / "operator.key"
        key_file.write_text(operator.keystring)
        key_file.chmod(0o600)
        staked = f"battery-{uuid.uuid4().hex[:8]}"
        settings = ChainSettings(rpc_url=node.url, signer=operator, ca_file=str(node.ca_path), timeout=10.0)

        async def prepare() -> Deployment:
            async with ChainClient(settings) as client:
                deployment = await client.publish(*load_build_output(build))
            async with ChainClient(settings, deployment) as client:
                token = await client.stake(staked, 2 * SUI)
                await client.slash(token.token_id, 1000, "battery")
            return deployment

        yield Chain(node, operator, key_file, asyncio.run(prepare()), staked)


@pytest.fixture(scope="session")
def ec2_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("badinput-moto") / "server.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start: {log.read_text()}") from None
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The paths the cases name by placeholder: bad ones, and a valid signing certificate and key."""
    folder = tmp_path_factory.mktemp("badinput-files")
    not_pem = folder / "not.pem"
    not_pem.write_text("this is not a certificate\n")
    not_key = folder / "not.key"
    not_key.write_text("not a key\n")
    not_key.chmod(0o600)
    readable_key = folder / "readable.key"
    readable_key.write_text(new_signer().keystring)
    readable_key.chmod(0o644)
    fifo = folder / "fifo"
    os.mkfifo(fifo, 0o600)
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "battery")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA384()))
    cert_pem, key_pem = folder / "sign.pem", folder / "sign.key"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return {
        "@DIR@": str(folder),
        "@MISSING@": str(folder / "missing" / "file"),
        "@FIFO@": str(fifo),
        "@NOT_PEM@": str(not_pem),
        "@NOT_KEY@": str(not_key),
        "@READABLE_KEY@": str(readable_key),
        "@CERT@": str(cert_pem),
        "@CERT_KEY@": str(key_pem),
    }
