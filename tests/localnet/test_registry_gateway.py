"""k3s_daas::registry and k3s_daas::k8s_gateway, with attestation documents from the simulated NSM."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as rpc

from k3sdaas_localnet.nitro.nsm_sim import SimulatedNsm, boot_pcrs
from k3sdaas_localnet.nitro.pki import SimulatedPki
from k3sdaas_localnet.sui.handlers import k8s_gateway, registry, staking
from k3sdaas_localnet.sui.handlers.k8s_gateway import audit_batch_bcs, slash_request_bcs
from k3sdaas_localnet.sui.handlers.registry import intent_message_bcs
from k3sdaas_localnet.sui.testing import LocalNode, running_node

SUI = 1_000_000_000
PCRS = [bytes([i + 1]) * 48 for i in range(3)]
INSTANCE_PCR = bytes([9]) * 48


@pytest.fixture(scope="module")
def pki() -> SimulatedPki:
    return SimulatedPki.generate("i-0123456789abcdef0", datetime.now(UTC))


@pytest.fixture
def node(tmp_path: Path, pki: SimulatedPki) -> Iterator[LocalNode]:
    with running_node(tmp_path / "chain", nitro_root=pki.root.cert) as running:
        yield running


@pytest.fixture
def enclave_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def attest(pki: SimulatedPki, pcrs: list[bytes], public_key: bytes | None, *, debug: bool = False) -> bytes:
    nsm = SimulatedNsm(pki, "i-0123456789abcdef0-enc0123456789abcd",
                       boot_pcrs(*pcrs, instance_pcr=INSTANCE_PCR, debug=debug))
    return nsm.attest(public_key=public_key)


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def abort_of(executed: rpc.ExecutedTransaction) -> tuple[str, str, int]:
    status = executed.effects.status
    assert not status.success, "expected an abort"
    return status.error.abort.location.module, status.error.abort.location.function_name, status.error.abort.abort_code


async def set_pcrs(chain, dep, pcrs: list[bytes]) -> rpc.ExecutedTransaction:
    return await chain.call(dep, "registry::update_pcrs", [dep.registry, dep.admin_cap, *pcrs])


async def register(chain, dep, document: bytes) -> rpc.ExecutedTransaction:
    txn = await chain.client.transaction()
    doc = await txn.move_call(target="0x2::nitro_attestation::load_nitro_attestation", arguments=[document, "0x6"])
    await txn.move_call(target=f"{dep.package}::registry::register_enclave", arguments=[dep.registry, doc, "0x6"])
    return await chain.execute(txn)


async def test_update_pcrs_checks_length_and_debug_zeros(chain, deployed) -> None:
    short = await set_pcrs(chain, deployed, [PCRS[0], PCRS[1], b"\x01" * 47])
    assert abort_of(short) == ("registry", "update_pcrs", registry.ABORTS["EInvalidPcrLength"])
    zero = await set_pcrs(chain, deployed, [PCRS[0], bytes(48), PCRS[2]])
    assert abort_of(zero)[2] == registry.ABORTS["EDebugPcrs"]
    ok = await set_pcrs(chain, deployed, PCRS)
    assert ok.events.events[0].json.to_dict()["pcr_version"] == "1"
    assert (await chain.object(deployed.registry)).json.to_dict()["pcr_version"] == "1"


async def test_register_enclave_with_a_fresh_attestation(chain, deployed, pki, enclave_key) -> None:
    assert abort_of(await register(chain, deployed, attest(pki, PCRS, raw(enclave_key))))[2] == \
        registry.ABORTS["ENoPcrsConfigured"]
    await set_pcrs(chain, deployed, PCRS)
    executed = await register(chain, deployed, attest(pki, PCRS, raw(enclave_key)))
    assert executed.effects.status.success, executed.effects.status.error
    event = executed.events.events[0]
    assert event.event_type == f"{deployed.package}::registry::EnclaveRegistered"
    fields = event.json.to_dict()
    assert fields["pcr_version"] == "1" and fields["registered_by"] == chain.account.address
    stored = (await chain.object(deployed.registry)).json.to_dict()
    assert stored["enclave_pcr_version"] == "1" and stored["enclave_pk"] == fields["public_key"]


async def test_register_enclave_refuses_wrong_pcrs_keys_and_stale_documents(chain, deployed, pki, node,
                                                                            enclave_key) -> None:
    await set_pcrs(chain, deployed, PCRS)
    other = [PCRS[0], PCRS[1], bytes([7]) * 48]
    assert abort_of(await register(chain, deployed, attest(pki, other, raw(enclave_key))))[2] == \
        registry.ABORTS["EPcrMismatch"]
    assert abort_of(await register(chain, deployed, attest(pki, PCRS, raw(enclave_key), debug=True)))[2] == \
        registry.ABORTS["EDebugPcrs"]
    assert abort_of(await register(chain, deployed, attest(pki, PCRS, None)))[2] == \
        registry.ABORTS["EInvalidPublicKey"]
    document = attest(pki, PCRS, raw(enclave_key))
    node.advance_clock(registry.MAX_ATTESTATION_AGE_MS + 1_000)
    assert abort_of(await register(chain, deployed, document))[2] == registry.ABORTS["EStaleAttestation"]


async def test_load_nitro_attestation_verifies_the_document(chain, deployed, pki, enclave_key) -> None:
    document = bytearray(attest(pki, PCRS, raw(enclave_key)))
    document[-5] ^= 0xFF  # inside the COSE signature
    assert abort_of(await register(chain, deployed, bytes(document))) == \
        ("nitro_attestation", "load_nitro_attestation", 2)
    assert abort_of(await register(chain, deployed, b"not cbor"))[2] == 1
    foreign = SimulatedPki.generate("i-0fedcba987654321f", datetime.now(UTC))
    assert abort_of(await register(chain, deployed, attest(foreign, PCRS, raw(enclave_key))))[2] == 2


@pytest.fixture
async def enclave(chain, deployed, pki, enclave_key):
    await set_pcrs(chain, deployed, PCRS)
    assert (await register(chain, deployed, attest(pki, PCRS, raw(enclave_key)))).effects.status.success
    return deployed


def sign(key: Ed25519PrivateKey, intent: int, timestamp_ms: int, payload: bytes) -> bytes:
    return key.sign(intent_message_bcs(intent, timestamp_ms, payload))


async def test_anchor_audit_batch_needs_the_enclave_signature(chain, enclave, node, enclave_key) -> None:
    root, now = hashlib.sha256(b"batch").digest(), node.advance_clock(0)
    payload = audit_batch_bcs(root, 3, 10, 12)
    good = sign(enclave_key, registry.INTENT_AUDIT_ANCHOR, now, payload)
    target = "k8s_gateway::anchor_audit_batch"

    bad_count = await chain.call(enclave, target, [enclave.registry, root, 4, 10, 12, now, good, "0x6"])
    assert abort_of(bad_count)[2] == k8s_gateway.ABORTS["EInvalidBatch"]
    old = now - k8s_gateway.TIME_WINDOW_MS - 1
    late = await chain.call(enclave, target, [enclave.registry, root, 3, 10, 12, old,
                                              sign(enclave_key, 1, old, payload), "0x6"])
    assert abort_of(late)[2] == k8s_gateway.ABORTS["ETimestampOutOfWindow"]
    wrong_intent = sign(enclave_key, registry.INTENT_SLASH, now, payload)
    forged = await chain.call(enclave, target, [enclave.registry, root, 3, 10, 12, now, wrong_intent, "0x6"])
    assert abort_of(forged)[2] == k8s_gateway.ABORTS["EInvalidSignature"]

    anchored = await chain.call(enclave, target, [enclave.registry, root, 3, 10, 12, now, good, "0x6"])
    assert anchored.effects.status.success, anchored.effects.status.error
    assert anchored.events.events[0].json.to_dict()["count"] == "3"


async def test_slash_by_enclave_reuses_the_staking_slash(chain, enclave, node, enclave_key) -> None:
    token = chain.created(await chain.stake(enclave, 2 * SUI, b"w1"), "::staking::SealToken")[0]
    now = node.advance_clock(0)
    target = "k8s_gateway::slash_by_enclave"

    def args(bps: int, reason: bytes, signature: bytes) -> list:
        return [enclave.pool, enclave.registry, token, bps, reason, now, signature, "0x6"]

    too_big = sign(enclave_key, registry.INTENT_SLASH, now, slash_request_bcs(token, 20_000, b"x"))
    assert abort_of(await chain.call(enclave, target, args(20_000, b"x", too_big))) == \
        ("staking", "apply_slash", staking.ABORTS["EInvalidBps"])
    unsigned = await chain.call(enclave, target, args(1_000, b"x", bytes(64)))
    assert abort_of(unsigned)[2] == k8s_gateway.ABORTS["EInvalidSignature"]
    good = sign(enclave_key, registry.INTENT_SLASH, now, slash_request_bcs(token, 1_000, b"x"))
    slashed = await chain.call(enclave, target, args(1_000, b"x", good))
    event = slashed.events.events[0]
    assert event.event_type == f"{enclave.package}::staking::Slashed" and event.module == "k8s_gateway"
    assert event.json.to_dict()["penalty"] == str(SUI // 5)
    replayed = await chain.call(enclave, target, args(1_000, b"x", good))
    assert abort_of(replayed) == ("staking", "apply_enclave_slash", staking.ABORTS["EReplayedSlash"])


async def test_submit_k8s_request_checks_validity_method_and_tier(chain, deployed, node) -> None:
    token = chain.created(await chain.stake(deployed, SUI, b"viewer"), "::staking::SealToken")[0]

    def request(method: bytes) -> list:
        return [deployed.pool, token, method, b"/api/v1/pods", b"default", bytes(32), "0x6"]

    target = "k8s_gateway::submit_k8s_request"
    ok = await chain.call(deployed, target, request(b"GET"))
    assert ok.effects.status.success, ok.effects.status.error
    assert ok.events.events[0].json.to_dict()["tier"] == 1
    assert abort_of(await chain.call(deployed, target, request(b"CREATE")))[2] == k8s_gateway.ABORTS["ETierTooLow"]
    assert abort_of(await chain.call(deployed, target, request(b"FETCH")))[2] == k8s_gateway.ABORTS["EInvalidMethod"]
    node.advance_clock(staking.DEFAULT_TOKEN_TTL_MS)
    assert abort_of(await chain.call(deployed, target, request(b"GET")))[2] == k8s_gateway.ABORTS["ETokenInvalid"]
