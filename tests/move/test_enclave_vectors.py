"""The ed25519 vectors hard-coded in move/tests/enclave_vectors.move, recomputed from scratch.

Move unit tests cannot sign (there is no ed25519 signing native), so the Move tests carry a public
key and signatures made here. These tests re-derive the key from its seed, re-encode every signed
message in BCS the way `registry::verify_enclave_signature` does (raw ed25519 over
`bcs(IntentMessage { intent: u8, timestamp_ms: u64, payload })`, no hashing), and check that the
hard-coded signatures verify and are exactly the ones the key produces, so the vectors cannot rot.

Regenerate the constants with `python tests/move/test_enclave_vectors.py`.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

REPO = Path(__file__).resolve().parents[2]
VECTORS_MOVE = REPO / "move" / "tests" / "enclave_vectors.move"

KEY_SEED = hashlib.sha256(b"k3s-daas move unit tests: enclave key").digest()

# Inputs used to generate the vectors (the tests read the values back from the Move file).
GENERATION_INPUTS: dict[str, int | bytes] = {
    "SIGNED_AT_MS": 1_700_000_000_000,
    "PING_INTENT": 0,
    "PING_PAYLOAD": b"k3s-daas registry test",
    "AUDIT_MERKLE_ROOT": hashlib.sha256(b"k3s-daas audit batch 10..12").digest(),
    "AUDIT_COUNT": 3,
    "AUDIT_FIRST_SEQ": 10,
    "AUDIT_LAST_SEQ": 12,
    "SLASH_TOKEN_ID": hashlib.sha256(b"k3s-daas slash test token").digest(),
    "SLASH_BPS": 1000,
    "SLASH_REASON": b"missed heartbeats",
    # A second request for the same record, signed later: accepted after the first one.
    "SLASH_LATER_SIGNED_AT_MS": 1_700_000_001_000,
}
TEXT_CONSTANTS = ("PING_PAYLOAD", "SLASH_REASON")
INTENT_AUDIT_ANCHOR = 1
INTENT_SLASH = 2

Constants = dict[str, int | bytes]


# --- BCS -----------------------------------------------------------------------------------------


def uleb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def bcs_u8(value: int) -> bytes:
    return value.to_bytes(1, "little")


def bcs_u64(value: int) -> bytes:
    return value.to_bytes(8, "little")


def bcs_vector_u8(value: bytes) -> bytes:
    return uleb128(len(value)) + value


def bcs_id(value: bytes) -> bytes:
    # An ID is an address: 32 raw bytes, no length prefix.
    if len(value) != 32:
        raise ValueError(f"ID must be 32 bytes, got {len(value)}")
    return value


def intent_message(intent: int, timestamp_ms: int, payload: bytes) -> bytes:
    """BCS of registry::IntentMessage<P>, with the payload already BCS-encoded."""
    return bcs_u8(intent) + bcs_u64(timestamp_ms) + payload


# --- The signed messages, one builder per signature constant --------------------------------------


def _int(c: Constants, name: str) -> int:
    value = c[name]
    assert isinstance(value, int), f"{name} must be an integer constant"
    return value


def _bytes(c: Constants, name: str) -> bytes:
    value = c[name]
    assert isinstance(value, bytes), f"{name} must be a byte-vector or address constant"
    return value


def ping_message(c: Constants) -> bytes:
    # registry_tests verifies a plain vector<u8> payload.
    return intent_message(_int(c, "PING_INTENT"), _int(c, "SIGNED_AT_MS"), bcs_vector_u8(_bytes(c, "PING_PAYLOAD")))


def audit_message(c: Constants) -> bytes:
    # k8s_gateway::AuditBatch { merkle_root, count, first_seq, last_seq }
    batch = (
        bcs_vector_u8(_bytes(c, "AUDIT_MERKLE_ROOT"))
        + bcs_u64(_int(c, "AUDIT_COUNT"))
        + bcs_u64(_int(c, "AUDIT_FIRST_SEQ"))
        + bcs_u64(_int(c, "AUDIT_LAST_SEQ"))
    )
    return intent_message(INTENT_AUDIT_ANCHOR, _int(c, "SIGNED_AT_MS"), batch)


def slash_message_with(c: Constants, bps: int, signed_at_ms: int) -> bytes:
    # k8s_gateway::SlashRequest { token_id, bps, reason }
    request = bcs_id(_bytes(c, "SLASH_TOKEN_ID")) + bcs_u64(bps) + bcs_vector_u8(_bytes(c, "SLASH_REASON"))
    return intent_message(INTENT_SLASH, signed_at_ms, request)


def slash_message(c: Constants) -> bytes:
    return slash_message_with(c, _int(c, "SLASH_BPS"), _int(c, "SIGNED_AT_MS"))


def slash_zero_bps_message(c: Constants) -> bytes:
    # A correctly signed request that staking must still refuse (EInvalidBps).
    return slash_message_with(c, 0, _int(c, "SIGNED_AT_MS"))


def slash_later_message(c: Constants) -> bytes:
    return slash_message_with(c, _int(c, "SLASH_BPS"), _int(c, "SLASH_LATER_SIGNED_AT_MS"))


SIGNED_MESSAGES: dict[str, Callable[[Constants], bytes]] = {
    "PING_SIGNATURE": ping_message,
    "AUDIT_SIGNATURE": audit_message,
    "SLASH_SIGNATURE": slash_message,
    "SLASH_ZERO_BPS_SIGNATURE": slash_zero_bps_message,
    "SLASH_LATER_SIGNATURE": slash_later_message,
}


# --- Keys and the Move file ----------------------------------------------------------------------


def enclave_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(KEY_SEED)


def raw_public_key(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def render_move_constants() -> str:
    """The constants block of enclave_vectors.move, from GENERATION_INPUTS and the seeded key."""
    key = enclave_key()
    values: Constants = {"ENCLAVE_PUBLIC_KEY": raw_public_key(key), **GENERATION_INPUTS}
    for name, build in SIGNED_MESSAGES.items():
        values[name] = key.sign(build(values))
    lines = []
    for name, value in values.items():
        if name == "SLASH_TOKEN_ID":
            assert isinstance(value, bytes)
            lines.append(f"const {name}: address = @0x{value.hex()};")
        elif name in TEXT_CONSTANTS:
            assert isinstance(value, bytes)
            lines.append(f'const {name}: vector<u8> = b"{value.decode()}";')
        elif isinstance(value, bytes):
            lines.append(f'const {name}: vector<u8> = x"{value.hex()}";')
        else:
            move_type = "u8" if name == "PING_INTENT" else "u64"
            lines.append(f"const {name}: {move_type} = {value:_};")
    return "\n".join(lines)


# --- Tests ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def constants(move_constants: Callable[[str], Constants]) -> Constants:
    return move_constants(VECTORS_MOVE.read_text())


def test_bcs_encoder_matches_the_nautilus_reference_vector() -> None:
    # Published cross-language vector (Move and Rust agree on it): IntentMessage { intent: 0,
    # timestamp_ms: 1744038900000, payload: { location: "San Francisco", temperature: 13 } }.
    payload = bcs_vector_u8(b"San Francisco") + bcs_u64(13)
    expected = "0020b1d110960100000d53616e204672616e636973636f0d00000000000000"
    assert intent_message(0, 1744038900000, payload).hex() == expected


def test_uleb128_lengths_above_127_use_two_bytes() -> None:
    assert uleb128(127) == b"\x7f"
    assert uleb128(128) == b"\x80\x01"
    assert uleb128(300) == b"\xac\x02"


def test_public_key_is_the_seeded_key(constants: Constants) -> None:
    assert constants["ENCLAVE_PUBLIC_KEY"] == raw_public_key(enclave_key())


def test_generation_inputs_are_the_ones_in_the_move_file(constants: Constants) -> None:
    for name, value in GENERATION_INPUTS.items():
        assert constants[name] == value, name


@pytest.mark.parametrize("signature_name", sorted(SIGNED_MESSAGES))
def test_hard_coded_signature_verifies_over_the_bcs_message(constants: Constants, signature_name: str) -> None:
    message = SIGNED_MESSAGES[signature_name](constants)
    signature = _bytes(constants, signature_name)
    public_key = Ed25519PublicKey.from_public_bytes(_bytes(constants, "ENCLAVE_PUBLIC_KEY"))
    public_key.verify(signature, message)
    # Ed25519 is deterministic: the seeded key reproduces the constant byte for byte.
    assert enclave_key().sign(message) == signature


@pytest.mark.parametrize("signature_name", sorted(SIGNED_MESSAGES))
def test_signature_fails_for_a_changed_message(constants: Constants, signature_name: str) -> None:
    # The Move tests expect EInvalidSignature when any signed field differs; so must ed25519.
    message = bytearray(SIGNED_MESSAGES[signature_name](constants))
    message[-1] ^= 0x01
    public_key = Ed25519PublicKey.from_public_bytes(_bytes(constants, "ENCLAVE_PUBLIC_KEY"))
    with pytest.raises(InvalidSignature):
        public_key.verify(_bytes(constants, signature_name), bytes(message))


def test_rendered_constants_equal_the_move_file(
    constants: Constants, move_constants: Callable[[str], Constants]
) -> None:
    rendered = move_constants(render_move_constants())
    assert rendered == {name: constants[name] for name in rendered}


if __name__ == "__main__":
    sys.stdout.write(render_move_constants() + "\n")
