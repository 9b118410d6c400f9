"""Verify a Nitro attestation document end to end against a pinned root at an explicit time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from k3sdaas.attestation.certchain import LEAF, check_pinned_root, parse_certificate, verify_chain
from k3sdaas.attestation.cose import decode_sign1, verify_sign1
from k3sdaas.attestation.document import AttestationDocument, parse_payload
from k3sdaas.attestation.errors import ChainError
from k3sdaas.attestation.policy import PcrPolicy, check_binding
from k3sdaas.attestation.roots import aws_nitro_root, der_sha256


def _opt_hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


@dataclass(frozen=True)
class VerifiedAttestation:
    document: AttestationDocument
    chain: list[x509.Certificate]  # leaf first, pinned root last
    verified_at: datetime

    def summary(self) -> dict[str, Any]:
        """JSON-ready view for operators and auditors."""
        doc = self.document
        return {
            "module_id": doc.module_id,
            "timestamp": doc.timestamp,
            "time": doc.time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "digest": doc.digest,
            "pcrs": {str(index): value.hex() for index, value in sorted(doc.pcrs.items())},
            "public_key": _opt_hex(doc.public_key),
            "user_data": _opt_hex(doc.user_data),
            "nonce": _opt_hex(doc.nonce),
            "chain": [cert.subject.rfc4514_string() for cert in self.chain],
            "root_sha256": der_sha256(self.chain[-1]),
            "verified_at": self.verified_at.isoformat().replace("+00:00", "Z"),
        }


def verify_attestation(
    data: bytes,
    *,
    root: x509.Certificate | None = None,
    at: datetime | None = None,
    policy: PcrPolicy | None = None,
    nonce: bytes | None = None,
    public_key: bytes | None = None,
    user_data: bytes | None = None,
) -> VerifiedAttestation:
    """Raise an AttestationError subclass with the reason, or return the verified document.

    ``root`` defaults to AWS Nitro Root-G1, ``at`` to now, ``policy`` to "refuse debug mode".
    Cheap structural checks run first so tampering is rejected before any chain work.
    """
    root = root if root is not None else aws_nitro_root()
    at = at if at is not None else datetime.now(UTC)
    if at.tzinfo is None:
        raise ValueError("verification time must be timezone-aware")
    policy = policy if policy is not None else PcrPolicy()

    message = decode_sign1(data)
    document = parse_payload(message.payload)
    check_pinned_root(document.cabundle, root)
    leaf = parse_certificate(document.certificate, LEAF)
    key = leaf.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)  # parse_certificate guarantees P-384
    verify_sign1(message, key)
    chain = verify_chain(leaf, document.cabundle, root, at)
    if not leaf.not_valid_before_utc <= document.time <= leaf.not_valid_after_utc:
        raise ChainError("document timestamp is outside the leaf certificate's validity", field="timestamp")
    policy.check(document.pcrs)
    check_binding(document, "nonce", nonce)
    check_binding(document, "public_key", public_key)
    check_binding(document, "user_data", user_data)
    return VerifiedAttestation(document=document, chain=chain, verified_at=at)
