"""``0x2::nitro_attestation::load_nitro_attestation``: the framework native, backed by k3sdaas.attestation.

Like the native it checks the COSE envelope, the payload, the P-384 signature and the chain to the
root at the Clock's time, and nothing else (no PCR values, nonce or freshness). The root is the AWS
Nitro root unless the node is configured with another one (the simulated NSM's test root).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from k3sdaas.attestation import AttestationError, PayloadError, PcrPolicy, verify_attestation

from ..movetypes import FRAMEWORK
from ..objects import StructValue
from .base import CallContext, MoveFunction, MoveModule

DOCUMENT_TYPE = f"{FRAMEWORK}::nitro_attestation::NitroAttestationDocument"

ABORTS = {"ENotSupportedError": 0, "EParseError": 1, "EVerifyError": 2, "EInvalidPCRsError": 3}

STRUCTS = {
    "PCREntry": (("index", "u8"), ("value", "vector<u8>")),
    "NitroAttestationDocument": (
        ("module_id", "vector<u8>"), ("timestamp", "u64"), ("digest", "vector<u8>"), ("pcrs", "vector<PCREntry>"),
        ("public_key", "Option<vector<u8>>"), ("user_data", "Option<vector<u8>>"), ("nonce", "Option<vector<u8>>"),
    ),
}


def load_document(ctx: CallContext, data: bytes, root: x509.Certificate | None) -> StructValue:
    """Verify ``data`` at the Clock time; abort with the native's codes on failure."""
    at = datetime.fromtimestamp(ctx.now_ms / 1000, tz=UTC)
    try:
        verified = verify_attestation(bytes(data), root=root, at=at, policy=PcrPolicy(allow_debug=True))
    except PayloadError as exc:
        ctx.abort("EInvalidPCRsError" if exc.field == "pcrs" else "EParseError")
    except AttestationError as exc:
        ctx.abort("EParseError" if exc.stage == "envelope" else "EVerifyError")
    doc = verified.document
    return StructValue(
        DOCUMENT_TYPE,
        {
            "module_id": doc.module_id.encode(),
            "timestamp": doc.timestamp,
            "digest": doc.digest.encode(),
            "pcrs": [{"index": i, "value": v} for i, v in sorted(doc.pcrs.items())],
            "public_key": doc.public_key,
            "user_data": doc.user_data,
            "nonce": doc.nonce,
        },
    )


def module(root: x509.Certificate | None) -> MoveModule:
    """The framework module bound to the node's configured root certificate."""

    def load_nitro_attestation(ctx: CallContext, args: list[Any]) -> list[Any]:
        attestation, _clock = args
        return [load_document(ctx, attestation, root)]

    return MoveModule(
        name="nitro_attestation",
        aborts=ABORTS,
        structs=STRUCTS,
        functions=(
            MoveFunction("load_nitro_attestation", ("attestation: vector<u8>", "clock: &Clock"),
                         load_nitro_attestation, ("NitroAttestationDocument",), visibility="entry"),
        ),
    )
