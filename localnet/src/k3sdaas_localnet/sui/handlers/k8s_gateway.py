"""``k3s_daas::k8s_gateway`` mirrored in Python."""

from __future__ import annotations

from typing import Any

from ..objects import uleb128
from . import registry, staking
from .base import CallContext, MoveFunction, MoveModule

READ_METHODS = (b"GET", b"LIST", b"WATCH")
WRITE_METHODS = (b"CREATE", b"UPDATE", b"PATCH", b"DELETE")
TIME_WINDOW_MS = 600_000
MERKLE_ROOT_LENGTH = 32

ABORTS = {
    "ETokenInvalid": 200,
    "ETierTooLow": 201,
    "EInvalidMethod": 202,
    "EInvalidSignature": 203,
    "ETimestampOutOfWindow": 204,
    "EInvalidBatch": 205,
}

EVENTS = {
    "K8sRequestSubmitted": (
        ("token_id", "ID"), ("requester", "address"), ("method", "vector<u8>"), ("path", "vector<u8>"),
        ("namespace", "vector<u8>"), ("payload_hash", "vector<u8>"), ("tier", "u8"), ("timestamp_ms", "u64"),
    ),
    "AuditBatchAnchored": (
        ("merkle_root", "vector<u8>"), ("count", "u64"), ("first_seq", "u64"), ("last_seq", "u64"),
        ("timestamp_ms", "u64"), ("pcr_version", "u64"),
    ),
}

# Signed payloads (BCS, positional); not objects, but their layouts are part of the ABI.
ABILITIES: dict[str, tuple[str, ...]] = {"AuditBatch": ("copy", "drop"), "SlashRequest": ("copy", "drop")}

STRUCTS = {
    "AuditBatch": (("merkle_root", "vector<u8>"), ("count", "u64"), ("first_seq", "u64"), ("last_seq", "u64")),
    "SlashRequest": (("token_id", "ID"), ("bps", "u64"), ("reason", "vector<u8>")),
}


def _uleb_bytes(data: bytes) -> bytes:
    return uleb128(len(data)) + data


def audit_batch_bcs(merkle_root: bytes, count: int, first_seq: int, last_seq: int) -> bytes:
    return _uleb_bytes(merkle_root) + b"".join(v.to_bytes(8, "little") for v in (count, first_seq, last_seq))


def slash_request_bcs(token_id: str, bps: int, reason: bytes) -> bytes:
    return bytes.fromhex(token_id[2:]) + bps.to_bytes(8, "little") + _uleb_bytes(reason)


def _assert_fresh(ctx: CallContext, timestamp_ms: int) -> None:
    if abs(timestamp_ms - ctx.now_ms) > TIME_WINDOW_MS:
        ctx.at("assert_fresh").abort("ETimestampOutOfWindow")


def submit_k8s_request(ctx: CallContext, args: list[Any]) -> list[Any]:
    pool, token, method, path, namespace, payload_hash, _clock, _tx = args
    record = staking.record_of(ctx, pool, token.id)
    if not staking.is_valid_record(record, ctx.now_ms):
        ctx.abort("ETokenInvalid")
    if method not in READ_METHODS + WRITE_METHODS:
        ctx.abort("EInvalidMethod")
    assert record is not None
    if record["tier"] == 1 and method not in READ_METHODS:
        ctx.abort("ETierTooLow")
    ctx.emit(
        "K8sRequestSubmitted", token_id=token.id, requester=ctx.sender, method=method, path=path,
        namespace=namespace, payload_hash=payload_hash, tier=record["tier"], timestamp_ms=ctx.now_ms,
    )
    return []


def anchor_audit_batch(ctx: CallContext, args: list[Any]) -> list[Any]:
    reg, merkle_root, count, first_seq, last_seq, timestamp_ms, signature, _clock = args
    if len(merkle_root) != MERKLE_ROOT_LENGTH or count == 0 or last_seq < first_seq \
            or count - 1 != last_seq - first_seq:
        ctx.abort("EInvalidBatch")
    _assert_fresh(ctx, timestamp_ms)
    payload = audit_batch_bcs(merkle_root, count, first_seq, last_seq)
    if not registry.verify_enclave_signature(reg, registry.INTENT_AUDIT_ANCHOR, timestamp_ms, payload, signature):
        ctx.abort("EInvalidSignature")
    ctx.emit(
        "AuditBatchAnchored", merkle_root=merkle_root, count=count, first_seq=first_seq, last_seq=last_seq,
        timestamp_ms=timestamp_ms, pcr_version=reg.fields["pcr_version"],
    )
    return []


def slash_by_enclave(ctx: CallContext, args: list[Any]) -> list[Any]:
    pool, reg, token_id, bps, reason, timestamp_ms, signature, _clock = args
    _assert_fresh(ctx, timestamp_ms)
    payload = slash_request_bcs(token_id, bps, reason)
    if not registry.verify_enclave_signature(reg, registry.INTENT_SLASH, timestamp_ms, payload, signature):
        ctx.abort("EInvalidSignature")
    staking.apply_enclave_slash(ctx, pool, token_id, bps, reason, timestamp_ms)
    return []


MODULE = MoveModule(
    name="k8s_gateway",
    aborts=ABORTS,
    events=EVENTS,
    structs=STRUCTS,
    abilities=ABILITIES,
    functions=(
        MoveFunction(
            "submit_k8s_request",
            ("pool: &StakePool", "token: &SealToken", "method: vector<u8>", "path: vector<u8>",
             "namespace: vector<u8>", "payload_hash: vector<u8>", "clock: &Clock", "ctx: &TxContext"),
            submit_k8s_request,
        ),
        MoveFunction(
            "anchor_audit_batch",
            ("registry: &EnclaveRegistry", "merkle_root: vector<u8>", "count: u64", "first_seq: u64",
             "last_seq: u64", "timestamp_ms: u64", "signature: vector<u8>", "clock: &Clock"),
            anchor_audit_batch,
        ),
        MoveFunction(
            "slash_by_enclave",
            ("pool: &mut StakePool", "registry: &EnclaveRegistry", "token_id: ID", "bps: u64",
             "reason: vector<u8>", "timestamp_ms: u64", "signature: vector<u8>", "clock: &Clock"),
            slash_by_enclave,
        ),
    ),
)
