"""COSE_Sign1 with ES384 as the Nitro Secure Module emits it (RFC 8152, untagged or tag 18)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from k3sdaas.attestation.errors import EnvelopeError, SignatureError

COSE_SIGN1_TAG = 18
ALG_ES384 = -35
PROTECTED_ES384 = cbor2.dumps({1: ALG_ES384})
P384_COORDINATE_BYTES = 48
SIGNATURE_BYTES = 2 * P384_COORDINATE_BYTES
MAX_PAYLOAD_BYTES = 16384  # exclusive, as the NSM API and Sui's parser bound it


@dataclass(frozen=True)
class CoseSign1:
    protected: bytes
    unprotected: Mapping[Any, Any]
    payload: bytes
    signature: bytes

    def sig_structure(self) -> bytes:
        """The bytes that are signed: Sig_structure for a COSE_Sign1 with empty external AAD."""
        return cbor2.dumps(["Signature1", self.protected, b"", self.payload])

    def encode(self) -> bytes:
        """Untagged array(4), which is what the NSM returns."""
        return cbor2.dumps([self.protected, dict(self.unprotected), self.payload, self.signature])


def loads_exact(data: bytes, what: str, error: type[Exception]) -> Any:
    """Decode one CBOR item and refuse trailing bytes (cbor2.loads silently ignores them)."""
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, EOFError, RecursionError) as exc:
        raise error(f"{what} is not valid CBOR: {exc}") from exc
    if stream.tell() != len(data):
        raise error(f"{what} has {len(data) - stream.tell()} trailing bytes after the CBOR item")
    return value


def decode_sign1(data: bytes) -> CoseSign1:
    """Parse and shape-check the envelope; does not verify the signature."""
    item = loads_exact(data, "document", EnvelopeError)
    if isinstance(item, cbor2.CBORTag):
        if item.tag != COSE_SIGN1_TAG:
            raise EnvelopeError(f"document has CBOR tag {item.tag}, expected none or {COSE_SIGN1_TAG} (COSE_Sign1)")
        item = item.value
    if not isinstance(item, (list, tuple)) or len(item) != 4:  # cbor2 yields a tuple inside a tag
        raise EnvelopeError("document is not a COSE_Sign1 array of 4 elements")
    protected, unprotected, payload, signature = item
    if not isinstance(protected, bytes):
        raise EnvelopeError("protected header is not a byte string", field="protected")
    header = loads_exact(protected, "protected header", EnvelopeError)
    if header != {1: ALG_ES384}:
        raise EnvelopeError(f"protected header is {header!r}, expected {{1: -35}} (ES384)", field="protected")
    if not isinstance(unprotected, Mapping):  # a FrozenDict inside a tag
        raise EnvelopeError("unprotected header is not a map", field="unprotected")
    if not isinstance(payload, bytes) or not 1 <= len(payload) < MAX_PAYLOAD_BYTES:
        raise EnvelopeError(f"payload must be a byte string of 1..{MAX_PAYLOAD_BYTES - 1} bytes", field="payload")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise EnvelopeError(f"signature must be {SIGNATURE_BYTES} bytes (raw ES384 r||s)", field="signature")
    return CoseSign1(protected, unprotected, payload, signature)


def raw_to_der(signature: bytes) -> bytes:
    """COSE carries r||s as two fixed-size big-endian integers; OpenSSL wants DER."""
    r = int.from_bytes(signature[:P384_COORDINATE_BYTES], "big")
    s = int.from_bytes(signature[P384_COORDINATE_BYTES:], "big")
    return encode_dss_signature(r, s)


def der_to_raw(signature: bytes) -> bytes:
    r, s = decode_dss_signature(signature)
    return r.to_bytes(P384_COORDINATE_BYTES, "big") + s.to_bytes(P384_COORDINATE_BYTES, "big")


def verify_sign1(message: CoseSign1, key: ec.EllipticCurvePublicKey) -> None:
    if not isinstance(key.curve, ec.SECP384R1):
        raise SignatureError(f"leaf key is on {key.curve.name}, ES384 needs secp384r1", field="certificate")
    try:
        key.verify(raw_to_der(message.signature), message.sig_structure(), ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise SignatureError(
            "COSE signature does not verify with the leaf certificate key", field="signature"
        ) from None


def sign1(payload: bytes, key: ec.EllipticCurvePrivateKey) -> CoseSign1:
    """Sign like the NSM: protected {1:-35}, empty unprotected map, raw r||s."""
    unsigned = CoseSign1(PROTECTED_ES384, {}, payload, b"")
    der = key.sign(unsigned.sig_structure(), ec.ECDSA(hashes.SHA384()))
    return CoseSign1(PROTECTED_ES384, {}, payload, der_to_raw(der))
