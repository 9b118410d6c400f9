"""``k3s_daas::registry`` (Nautilus enclave registry) mirrored in Python."""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..objects import LiveObject, PureBytes, StructValue
from .base import CallContext, ExecutionFailure, MoveFunction, MoveModule, reader

PCR_LENGTH = 48
ENCLAVE_KEY_LENGTH = 32
MAX_ATTESTATION_AGE_MS = 600_000
INTENT_AUDIT_ANCHOR = 1
INTENT_SLASH = 2

ABORTS = {
    "EInvalidPcrLength": 100,
    "EDebugPcrs": 101,
    "ENoPcrsConfigured": 102,
    "EPcrMismatch": 103,
    "EInvalidPublicKey": 104,
    "EStaleAttestation": 105,
}

EVENTS = {
    "PcrsUpdated": (("pcr_version", "u64"), ("pcr0", "vector<u8>"), ("pcr1", "vector<u8>"), ("pcr2", "vector<u8>")),
    "EnclaveRegistered": (
        ("public_key", "vector<u8>"), ("pcr_version", "u64"), ("attested_at_ms", "u64"), ("registered_by", "address"),
    ),
}

STRUCTS = {
    "IntentMessage<P>": (("intent", "u8"), ("timestamp_ms", "u64"), ("payload", "P")),
    "EnclaveRegistry": (
        ("id", "UID"), ("pcr0", "vector<u8>"), ("pcr1", "vector<u8>"), ("pcr2", "vector<u8>"), ("pcr_version", "u64"),
        ("enclave_pk", "vector<u8>"), ("enclave_pcr_version", "u64"), ("registered_at_ms", "u64"),
    ),
}

ABILITIES: dict[str, tuple[str, ...]] = {"EnclaveRegistry": ("key",), "IntentMessage<P>": ("copy", "drop")}


def has_current_enclave(registry: LiveObject) -> bool:
    f = registry.fields
    return len(f["enclave_pk"]) > 0 and f["enclave_pcr_version"] == f["pcr_version"]


def intent_message_bcs(intent: int, timestamp_ms: int, payload_bcs: bytes) -> bytes:
    """``bcs(IntentMessage { intent: u8, timestamp_ms: u64, payload })``."""
    return bytes([intent]) + timestamp_ms.to_bytes(8, "little") + payload_bcs


def verify_enclave_signature(registry: LiveObject, intent: int, timestamp_ms: int, payload_bcs: bytes,
                             signature: bytes) -> bool:
    """Raw ed25519 over the BCS intent message by the key registered for the current PCR version."""
    if not has_current_enclave(registry):
        return False
    key = Ed25519PublicKey.from_public_bytes(bytes(registry.fields["enclave_pk"]))
    try:
        key.verify(bytes(signature), intent_message_bcs(intent, timestamp_ms, payload_bcs))
    except (InvalidSignature, ValueError):
        return False
    return True


def init(ctx: CallContext) -> None:
    registry = ctx.new_object(
        "EnclaveRegistry",
        {"pcr0": b"", "pcr1": b"", "pcr2": b"", "pcr_version": 0, "enclave_pk": b"", "enclave_pcr_version": 0,
         "registered_at_ms": 0},
    )
    ctx.share(registry)


def update_pcrs(ctx: CallContext, args: list[Any]) -> list[Any]:
    registry, _cap, pcr0, pcr1, pcr2 = args
    pcrs = (pcr0, pcr1, pcr2)
    if any(len(p) != PCR_LENGTH for p in pcrs):
        ctx.abort("EInvalidPcrLength")
    if any(not any(p) for p in pcrs):
        ctx.abort("EDebugPcrs")
    f = registry.fields
    f.update(pcr0=pcr0, pcr1=pcr1, pcr2=pcr2, pcr_version=f["pcr_version"] + 1, enclave_pk=b"")
    ctx.mutated(registry)
    ctx.emit("PcrsUpdated", pcr_version=f["pcr_version"], pcr0=pcr0, pcr1=pcr1, pcr2=pcr2)
    return []


def _document_pcr(document: StructValue, index: int) -> bytes | None:
    return next((bytes(e["value"]) for e in document.fields["pcrs"] if e["index"] == index), None)


def register_enclave(ctx: CallContext, args: list[Any]) -> list[Any]:
    registry, document, _clock, _tx = args
    _register_attested(ctx.at("register_attested"), registry, document)
    return []


def _register_attested(ctx: CallContext, registry: LiveObject, document: StructValue) -> None:
    """The private ``register_attested``: the checks and effects of ``register_enclave``."""
    f = registry.fields
    if f["pcr_version"] == 0:
        ctx.abort("ENoPcrsConfigured")
    found = [_document_pcr(document, i) for i in range(3)]
    if any(p is not None and not any(p) for p in found):
        ctx.abort("EDebugPcrs")
    if found != [f["pcr0"], f["pcr1"], f["pcr2"]]:
        ctx.abort("EPcrMismatch")
    public_key = document.fields["public_key"]
    if public_key is None or len(public_key) != ENCLAVE_KEY_LENGTH:
        ctx.abort("EInvalidPublicKey")
    attested_at = document.fields["timestamp"]
    if ctx.now_ms > attested_at + MAX_ATTESTATION_AGE_MS:
        ctx.abort("EStaleAttestation")
    f.update(enclave_pk=bytes(public_key), enclave_pcr_version=f["pcr_version"], registered_at_ms=ctx.now_ms)
    ctx.mutated(registry)
    ctx.emit("EnclaveRegistered", public_key=bytes(public_key), pcr_version=f["pcr_version"],
             attested_at_ms=attested_at, registered_by=ctx.sender)


def _verify_handler(ctx: CallContext, args: list[Any]) -> list[Any]:
    registry, intent, timestamp_ms, payload, signature = args
    if not isinstance(payload, PureBytes):
        raise ExecutionFailure("COMMAND_ARGUMENT_ERROR",
                               "the stand-in takes the payload P of verify_enclave_signature as a pure value only")
    return [verify_enclave_signature(registry, intent, timestamp_ms, payload.data, signature)]


MODULE = MoveModule(
    name="registry",
    aborts=ABORTS,
    events=EVENTS,
    structs=STRUCTS,
    abilities=ABILITIES,
    init=init,
    functions=(
        MoveFunction(
            "update_pcrs",
            ("registry: &mut EnclaveRegistry", "cap: &AdminCap", "pcr0: vector<u8>", "pcr1: vector<u8>",
             "pcr2: vector<u8>"),
            update_pcrs,
        ),
        MoveFunction("register_enclave",
                     ("registry: &mut EnclaveRegistry", "document: NitroAttestationDocument", "clock: &Clock",
                      "ctx: &mut TxContext"),
                     register_enclave),
        MoveFunction(
            "verify_enclave_signature",
            ("registry: &EnclaveRegistry", "intent: u8", "timestamp_ms: u64", "payload: P",
             "signature: &vector<u8>"),
            _verify_handler, ("bool",), type_params=("P",),
        ),
        MoveFunction("pcr_version", ("registry: &EnclaveRegistry",), reader(lambda ctx, r: r.fields["pcr_version"]),
                     ("u64",)),
        MoveFunction("pcrs", ("registry: &EnclaveRegistry",),
                     lambda ctx, args: [args[0].fields["pcr0"], args[0].fields["pcr1"], args[0].fields["pcr2"]],
                     ("vector<u8>", "vector<u8>", "vector<u8>")),
        MoveFunction("enclave_pk", ("registry: &EnclaveRegistry",), reader(lambda ctx, r: r.fields["enclave_pk"]),
                     ("vector<u8>",)),
        MoveFunction("has_current_enclave", ("registry: &EnclaveRegistry",),
                     reader(lambda ctx, r: has_current_enclave(r)), ("bool",)),
    ),
)
