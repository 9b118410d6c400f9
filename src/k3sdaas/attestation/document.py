"""The attestation document payload: field checks and limits, and the AWS byte layout for encoding."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cbor2

from k3sdaas.attestation.cose import loads_exact
from k3sdaas.attestation.errors import PayloadError

# Field order of every real NSM document; cbor2 keeps dict order, so encoding in this order is byte-exact.
FIELD_ORDER = (
    "module_id",
    "digest",
    "timestamp",
    "pcrs",
    "certificate",
    "cabundle",
    "public_key",
    "user_data",
    "nonce",
)
DIGEST = "SHA384"
PCR_BYTES = 48
MAX_PCRS = 32
MAX_CERT_BYTES = 1024
MAX_PUBLIC_KEY_BYTES = 1024
MAX_USER_DATA_BYTES = 512
MAX_NONCE_BYTES = 512


@dataclass(frozen=True)
class AttestationDocument:
    module_id: str
    timestamp: int  # milliseconds since the Unix epoch
    pcrs: dict[int, bytes]
    certificate: bytes
    cabundle: list[bytes]
    public_key: bytes | None = None
    user_data: bytes | None = None
    nonce: bytes | None = None
    digest: str = field(default=DIGEST)

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp / 1000, tz=UTC)

    def to_cbor(self) -> bytes:
        """Payload bytes in the exact layout the NSM emits (absent optional fields are CBOR null)."""
        return cbor2.dumps({name: getattr(self, name) for name in FIELD_ORDER})


def _optional_bytes(payload: dict[str, Any], name: str, low: int, high: int) -> bytes | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, bytes):
        raise PayloadError(f"payload field {name} must be a byte string, got {type(value).__name__}", field=name)
    if not low <= len(value) <= high:
        raise PayloadError(f"payload field {name} is {len(value)} bytes, allowed {low}..{high}", field=name)
    return value


def _required_bytes(payload: dict[str, Any], name: str, low: int, high: int) -> bytes:
    value = _optional_bytes(payload, name, low, high)
    if value is None:
        raise PayloadError(f"payload field {name} is missing or null", field=name)
    return value


def _pcrs(value: Any) -> dict[int, bytes]:
    if not isinstance(value, dict) or not 1 <= len(value) <= MAX_PCRS:
        raise PayloadError(f"payload field pcrs must be a map of 1..{MAX_PCRS} entries", field="pcrs")
    pcrs: dict[int, bytes] = {}
    for index, digest in value.items():
        if type(index) is not int or not 0 <= index < MAX_PCRS:
            raise PayloadError(f"payload field pcrs has invalid index {index!r}", field="pcrs")
        if not isinstance(digest, bytes) or len(digest) != PCR_BYTES:
            raise PayloadError(f"payload field pcrs[{index}] must be {PCR_BYTES} bytes", field="pcrs")
        pcrs[index] = digest
    return pcrs


def parse_payload(payload: bytes) -> AttestationDocument:
    fields = loads_exact(payload, "payload", PayloadError)
    if not isinstance(fields, dict):
        raise PayloadError("payload is not a CBOR map")
    unknown = [key for key in fields if key not in FIELD_ORDER]
    if unknown:
        raise PayloadError(f"payload has unexpected field {unknown[0]!r}", field=str(unknown[0]))
    module_id = fields.get("module_id")
    if not isinstance(module_id, str) or not module_id:
        raise PayloadError("payload field module_id must be a non-empty text string", field="module_id")
    if fields.get("digest") != DIGEST:
        raise PayloadError(f"payload field digest is {fields.get('digest')!r}, expected {DIGEST!r}", field="digest")
    timestamp = fields.get("timestamp")
    if type(timestamp) is not int or timestamp <= 0:
        raise PayloadError("payload field timestamp must be a positive integer", field="timestamp")
    cabundle = fields.get("cabundle")
    if not isinstance(cabundle, list) or not cabundle:
        raise PayloadError("payload field cabundle must be a non-empty array", field="cabundle")
    for position, cert in enumerate(cabundle):
        if not isinstance(cert, bytes) or not 1 <= len(cert) <= MAX_CERT_BYTES:
            raise PayloadError(
                f"payload field cabundle[{position}] must be 1..{MAX_CERT_BYTES} bytes", field="cabundle"
            )
    return AttestationDocument(
        module_id=module_id,
        timestamp=timestamp,
        pcrs=_pcrs(fields.get("pcrs")),
        certificate=_required_bytes(fields, "certificate", 1, MAX_CERT_BYTES),
        cabundle=list(cabundle),
        public_key=_optional_bytes(fields, "public_key", 1, MAX_PUBLIC_KEY_BYTES),
        user_data=_optional_bytes(fields, "user_data", 0, MAX_USER_DATA_BYTES),
        nonce=_optional_bytes(fields, "nonce", 0, MAX_NONCE_BYTES),
    )
