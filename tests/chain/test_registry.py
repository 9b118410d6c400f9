"""Enclave registration and audit anchors through ChainClient, with documents from the simulated NSM."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from k3sdaas.chain import ChainClient, ChainSettings, MoveAbortError, load_build_output
from k3sdaas_localnet.nitro.nsm_sim import SimulatedNsm, boot_pcrs
from k3sdaas_localnet.nitro.pki import SimulatedPki
from k3sdaas_localnet.sui.handlers.k8s_gateway import audit_batch_bcs
from k3sdaas_localnet.sui.handlers.registry import INTENT_AUDIT_ANCHOR, intent_message_bcs
from k3sdaas_localnet.sui.testing import LocalNode, running_node

from .conftest import SUI, new_signer

INSTANCE = "i-0123456789abcdef0"
PCRS = [bytes([i + 1]) * 48 for i in range(3)]


@pytest.fixture(scope="module")
def pki() -> SimulatedPki:
    return SimulatedPki.generate(INSTANCE, datetime.now(UTC))


@pytest.fixture(scope="module")
def nitro_node(tmp_path_factory: pytest.TempPathFactory, pki: SimulatedPki) -> Iterator[LocalNode]:
    with running_node(tmp_path_factory.mktemp("nitro-chain"), nitro_root=pki.root.cert) as running:
        yield running


def attestation(pki: SimulatedPki, key: Ed25519PrivateKey, pcrs: list[bytes]) -> bytes:
    nsm = SimulatedNsm(pki, f"{INSTANCE}-enc0123456789abcd", boot_pcrs(*pcrs, instance_pcr=bytes([9]) * 48))
    return nsm.attest(public_key=key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


async def test_register_enclave_then_anchor_a_signed_batch(nitro_node: LocalNode, pki: SimulatedPki,
                                                           build_output: Path) -> None:
    operator = new_signer()
    nitro_node.faucet(operator.address, 10 * SUI)
    settings = ChainSettings(rpc_url=nitro_node.url, signer=operator, ca_file=str(nitro_node.ca_path))
    enclave_key = Ed25519PrivateKey.generate()
    async with ChainClient(settings) as client:
        await client.publish(*load_build_output(build_output))
        await client.update_pcrs(*PCRS)
        with pytest.raises(MoveAbortError) as mismatch:
            await client.register_enclave(attestation(pki, enclave_key, [PCRS[0], PCRS[1], bytes([7]) * 48]))
        assert mismatch.value.abort.name == "EPcrMismatch"
        registered = await client.register_enclave(attestation(pki, enclave_key, PCRS))
        assert [e.name for e in registered.events] == ["EnclaveRegistered"]

        root, now = bytes(range(32)), await client.chain_time_ms()
        message = intent_message_bcs(INTENT_AUDIT_ANCHOR, now, audit_batch_bcs(root, 3, 10, 12))
        with pytest.raises(MoveAbortError) as forged:
            await client.anchor_audit_batch(root, 3, 10, 12, now, Ed25519PrivateKey.generate().sign(message))
        assert forged.value.abort.name == "EInvalidSignature"
        anchored = await client.anchor_audit_batch(root, 3, 10, 12, now, enclave_key.sign(message))
        assert anchored.events[0].name == "AuditBatchAnchored"
        assert anchored.events[0].fields["count"] == "3"
        history = [e async for e in client.events(["AuditBatchAnchored"], module="k8s_gateway")]
        assert [e.tx_digest for e in history] == [anchored.digest]
