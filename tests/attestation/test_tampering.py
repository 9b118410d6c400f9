"""Every single-byte and single-field change to a real document is refused, with a reason naming what broke."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest

from k3sdaas.attestation import (
    AttestationError,
    ChainError,
    EnvelopeError,
    PayloadError,
    PcrPolicy,
    SignatureError,
    verify_attestation,
)
from k3sdaas.attestation.cose import decode_sign1

SPECIFIC = (EnvelopeError, PayloadError, ChainError, SignatureError)
ALLOW_DEBUG = PcrPolicy(allow_debug=True)


def _regions(data: bytes) -> dict[str, range]:
    message = decode_sign1(data)
    payload_at = data.index(message.payload)
    signature_at = len(data) - len(message.signature)
    root_at = payload_at + message.payload.index(cbor2.loads(message.payload)["cabundle"][0])
    return {
        "payload": range(payload_at, payload_at + len(message.payload)),
        "signature": range(signature_at, len(data)),
        "root": range(root_at, root_at + 533),
    }


def _refusal(data: bytes, at) -> AttestationError:
    try:  # plain try: pytest.raises costs more than the verification itself across 14 000 flips
        verify_attestation(data, at=at, policy=ALLOW_DEBUG)
    except AttestationError as error:
        return error
    pytest.fail("tampered document was accepted")


@pytest.mark.parametrize(("fixture", "mask"), [("valid_doc", 0x01), ("valid_doc", 0x80), ("debug_doc", 0x01)])
def test_every_single_byte_flip_is_refused(fixture, mask, request):
    doc = request.getfixturevalue(fixture)
    regions = _regions(doc.data)
    for position in range(len(doc.data)):
        tampered = bytearray(doc.data)
        tampered[position] ^= mask
        error = _refusal(bytes(tampered), doc.at)
        assert isinstance(error, SPECIFIC) and str(error), position
        if position in regions["signature"]:
            assert isinstance(error, SignatureError), (position, error)
        elif position in regions["root"]:
            assert str(error) == "cabundle[0] is not the pinned root", (position, error)
        elif position in regions["payload"]:
            assert isinstance(error, (PayloadError, ChainError, SignatureError)), (position, error)
        else:
            assert isinstance(error, EnvelopeError), (position, error)


def _with_payload(data: bytes, change) -> bytes:
    """Re-encode the document with one payload field changed, keeping the original signature."""
    message = decode_sign1(data)
    fields: dict[str, Any] = cbor2.loads(message.payload)
    change(fields)
    return cbor2.dumps([message.protected, {}, cbor2.dumps(fields), message.signature])


def _set(name: str, value: Any):
    return lambda fields: fields.__setitem__(name, value)


def _pcr(index: int, value: bytes):
    return lambda fields: fields["pcrs"].__setitem__(index, value)


# Well-formed but different values: only the signature can notice.
RESIGN_NEEDED = {
    "module_id": _set("module_id", "i-020b6af9246d90e92-enc0183d09086c24191"),
    "timestamp": _set("timestamp", 1665651482137),
    "pcr0": _pcr(0, bytes(range(48))),
    "pcr15": _pcr(15, b"\x01" * 48),
    "extra_pcr": _pcr(16, bytes(48)),
    "dropped_pcr": lambda fields: fields["pcrs"].pop(15),
    "public_key": _set("public_key", b"attacker key"),
    "user_data": _set("user_data", b""),
    "nonce": _set("nonce", None),
    "cabundle_drop_last": lambda fields: fields["cabundle"].pop(),
    "certificate_swapped": lambda fields: fields.__setitem__("certificate", fields["cabundle"][3]),
    "public_key_key_absent": lambda fields: fields.pop("public_key"),
}


@pytest.mark.parametrize("change", RESIGN_NEEDED.values(), ids=RESIGN_NEEDED.keys())
def test_field_change_breaks_the_signature(valid_doc, change):
    error = _refusal(_with_payload(valid_doc.data, change), valid_doc.at)
    assert isinstance(error, SignatureError), error
    assert str(error) == "COSE signature does not verify with the leaf certificate key"


def test_reordered_cabundle_is_not_anchored(valid_doc):
    error = _refusal(_with_payload(valid_doc.data, lambda f: f["cabundle"].reverse()), valid_doc.at)
    assert isinstance(error, ChainError) and error.field == "cabundle"


# Malformed values: refused by the payload checks, naming the field.
MALFORMED = {
    "module_id": [_set("module_id", ""), _set("module_id", b"i-1"), lambda f: f.pop("module_id")],
    "digest": [_set("digest", "SHA256"), _set("digest", None)],
    "timestamp": [
        _set("timestamp", 0),
        _set("timestamp", -5),
        _set("timestamp", "1665651482136"),
        _set("timestamp", True),
    ],
    "pcrs": [_set("pcrs", {}), _pcr(32, bytes(48)), _pcr(0, bytes(32)), _pcr(1, "00" * 48), _set("pcrs", [bytes(48)])],
    "certificate": [_set("certificate", None), _set("certificate", b"\x30" * 1025), _set("certificate", "pem")],
    "cabundle": [
        _set("cabundle", []),
        _set("cabundle", [b""]),
        _set("cabundle", "x"),
        _set("cabundle", [b"\x30" * 1025]),
    ],
    "public_key": [_set("public_key", b""), _set("public_key", b"k" * 1025), _set("public_key", "key")],
    "user_data": [_set("user_data", b"u" * 513), _set("user_data", 7)],
    "nonce": [_set("nonce", b"n" * 513), _set("nonce", ["n"])],
    "surprise": [_set("surprise", 1)],
}


@pytest.mark.parametrize(
    ("field", "change"), [(field, change) for field, changes in MALFORMED.items() for change in changes]
)
def test_malformed_field_is_refused_naming_it(valid_doc, field, change):
    error = _refusal(_with_payload(valid_doc.data, change), valid_doc.at)
    assert isinstance(error, PayloadError), error
    assert error.field == field and field in str(error)


def _envelope(data: bytes, index: int, value: Any) -> bytes:
    parts: list[Any] = list(cbor2.loads(data))
    parts[index] = value
    return cbor2.dumps(parts)


def test_envelope_violations_are_refused(valid_doc):
    data = valid_doc.data
    message = decode_sign1(data)
    cases = {
        "ES256 header": (_envelope(data, 0, cbor2.dumps({1: -7})), "protected header"),
        "extra header": (_envelope(data, 0, cbor2.dumps({1: -35, 4: b"kid"})), "protected header"),
        "header not bytes": (_envelope(data, 0, {1: -35}), "protected header"),
        "unprotected list": (_envelope(data, 1, []), "unprotected header"),
        "payload text": (_envelope(data, 2, "payload"), "payload"),
        "payload too big": (_envelope(data, 2, b"\xa0" * 16384), "payload"),
        "short signature": (_envelope(data, 3, message.signature[:95]), "signature"),
        "trailing byte": (data + b"\x00", "trailing"),
        "three elements": (cbor2.dumps(list(cbor2.loads(data))[:3]), "4 elements"),
        "wrong tag": (cbor2.dumps(cbor2.CBORTag(17, cbor2.loads(data))), "tag 17"),
        "truncated": (data[:-1], "not valid CBOR"),
        "empty": (b"", "not valid CBOR"),
    }
    for name, (tampered, reason) in cases.items():
        error = _refusal(tampered, valid_doc.at)
        assert isinstance(error, EnvelopeError) and reason in str(error), name
