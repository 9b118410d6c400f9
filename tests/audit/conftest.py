"""A private Sui node stand-in (trusting a simulated Nitro root), a fresh deployment per test whose registry
holds an enclave key, and audit logs written and anchored through the real ChainClient."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_crypto import create_new_keypair

from k3sdaas.chain import ChainClient, ChainSettings, Deployment, Signer
from k3sdaas.chain.keys import signer_from_text
from k3sdaas.nautilus.audit import AuditLog, ChainAnchor
from k3sdaas_localnet.nitro.nsm_sim import SimulatedNsm, boot_pcrs
from k3sdaas_localnet.nitro.pki import SimulatedPki
from k3sdaas_localnet.sui.publish import module_markers
from k3sdaas_localnet.sui.testing import LocalNode, running_node

REPO = Path(__file__).resolve().parents[2]
INSTANCE = "i-0123456789abcdef0"
PCRS = [bytes([i + 1]) * 48 for i in range(3)]
SUI = 1_000_000_000


@dataclass
class Anchored:
    """One deployment whose registry holds ``enclave_key``."""

    node: LocalNode
    operator: Signer
    deployment: Deployment
    enclave_key: Ed25519PrivateKey

    def settings(self) -> ChainSettings:
        return ChainSettings(rpc_url=self.node.url, signer=self.operator, ca_file=str(self.node.ca_path),
                             timeout=10.0, retries=1, retry_delay=0.05)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``k3sdaas-nautilus audit …`` against this deployment."""
        return subprocess.run([sys.executable, "-m", "k3sdaas.nautilus", "audit", *args, "--rpc-url", self.node.url,
                               "--ca-file", str(self.node.ca_path), "--package-id", self.deployment.package_id],
                              capture_output=True, text=True, timeout=120, check=False)

    def write(self, path: Path, count: int, batch_size: int) -> AuditLog:
        """``count`` records through a running AuditLog, waited for until all are anchored."""

        async def go() -> AuditLog:
            async with ChainClient(self.settings(), self.deployment) as client:
                async def connected() -> ChainClient:
                    return client

                audit = AuditLog(path, ChainAnchor(connected, self.enclave_key.sign), batch_size=batch_size,
                                 anchor_interval=0.3, flush_interval=0.05)
                await audit.start()
                for i in range(count):
                    audit.record(f"sui:0x{i:064x}", 2, "GET", f"/api/v1/namespaces/ns-{i}/pods", 200, 0.001 * i,
                                 f"req-{i}")
                    if i % 7 == 0:
                        await asyncio.sleep(0.01)  # several flushes, as under real traffic
                deadline = time.monotonic() + 30
                while audit.anchored_seq < count and time.monotonic() < deadline:  # noqa: ASYNC110 (a counter)
                    await asyncio.sleep(0.05)
                await audit.stop()
                assert audit.anchored_seq == count, "the records were not all anchored in time"
                return audit

        return asyncio.run(go())


def attestation(pki: SimulatedPki, key: Ed25519PrivateKey) -> bytes:
    nsm = SimulatedNsm(pki, f"{INSTANCE}-enc0123456789abcd", boot_pcrs(*PCRS, instance_pcr=bytes([9]) * 48))
    return nsm.attest(public_key=key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


@pytest.fixture(scope="module")
def pki() -> SimulatedPki:
    return SimulatedPki.generate(INSTANCE, datetime.now(UTC))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, pki: SimulatedPki) -> Iterator[LocalNode]:
    with running_node(tmp_path_factory.mktemp("audit-chain"), nitro_root=pki.root.cert) as running:
        yield running


def deploy(node: LocalNode, pki: SimulatedPki) -> Anchored:
    """A new deployment with a registered enclave key (benchmarks/nautilus_audit.py uses it too)."""
    operator = signer_from_text(create_new_keypair(scheme=SignatureScheme.ED25519)[1].to_bech32())
    node.faucet(operator.address, 100 * SUI)
    key = Ed25519PrivateKey.generate()
    modules = module_markers("k3s_daas", REPO / "move" / "sources", ["staking", "registry", "k8s_gateway"])

    async def deploy() -> Deployment:
        settings = ChainSettings(rpc_url=node.url, signer=operator, ca_file=str(node.ca_path), timeout=10.0)
        async with ChainClient(settings) as client:
            deployment = await client.publish(modules, ["0x1", "0x2"])
            await client.update_pcrs(*PCRS)
            await client.register_enclave(attestation(pki, key))
            return deployment

    return Anchored(node, operator, asyncio.run(deploy()), key)


@pytest.fixture
def anchored(node: LocalNode, pki: SimulatedPki) -> Anchored:
    """A new deployment per test, so no other log's anchors mix in."""
    return deploy(node, pki)
