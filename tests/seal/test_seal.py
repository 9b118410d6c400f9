"""The seal challenge, its checks, signing with the project's key loader, and the tier groups."""

from __future__ import annotations

import base64
import dataclasses
import secrets
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pysui.sui.sui_crypto import SignatureScheme, create_new_keypair

from k3sdaas.chain.abi import TIERS
from k3sdaas.chain.keys import address_of, load_signer
from k3sdaas.errors import InvalidInput, K3sdaasError
from k3sdaas.seal import (
    HEADER,
    TIER_NAMES,
    BadSignature,
    Challenge,
    ChallengeInvalid,
    SealError,
    check_challenge,
    kubernetes_groups,
    sign_personal_message,
    verify_challenge,
    verify_personal_message,
)

AUDIENCE = "https://master.example:6443"
NOW = 1_764_579_600_000
KEYPAIRS = {scheme: create_new_keypair(scheme)[1] for scheme in
            (SignatureScheme.ED25519, SignatureScheme.SECP256K1, SignatureScheme.SECP256R1)}


def _challenge(address: str = "0x" + "a" * 64, **changes: object) -> Challenge:
    fields: dict[str, object] = {"nonce": "n" * 22, "audience": AUDIENCE, "token_id": "0x" + "b" * 64,
                                 "address": address, "issued_at_ms": NOW}
    return Challenge(**{**fields, **changes})  # type: ignore[arg-type]


def test_message_is_the_documented_text() -> None:
    assert _challenge().message().decode() == "\n".join([
        "K3s-DaaS seal proof v1",
        "nonce: " + "n" * 22,
        "audience: https://master.example:6443",
        "token_id: 0x" + "b" * 64,
        "address: 0x" + "a" * 64,
        "issued_at_ms: 1764579600000",
    ])
    assert Challenge.parse(_challenge().message()) == _challenge()


@pytest.mark.parametrize("change", [
    {"nonce": "short"}, {"nonce": "n" * 20 + "\n"}, {"nonce": "n" * 20 + "+/"}, {"audience": "master:6443"},
    {"audience": "https://a b"}, {"audience": "https://" + "a" * 241}, {"token_id": "0x" + "B" * 64},
    {"token_id": "0xabc"}, {"address": "0x" + "a" * 63}, {"issued_at_ms": -1}, {"issued_at_ms": True},
    {"issued_at_ms": "1"}, {"issued_at_ms": 10**16},
])
def test_non_canonical_values_are_refused_naming_the_field(change: dict[str, object]) -> None:
    with pytest.raises(ChallengeInvalid) as refused:
        _challenge(**change)
    assert refused.value.reason == "format" and refused.value.field == next(iter(change))
    assert isinstance(refused.value, SealError) and isinstance(refused.value, K3sdaasError)


@pytest.mark.parametrize("mutate", [
    lambda m: m + b"\n",
    lambda m: m.replace(b"\n", b"\r\n"),
    lambda m: m.replace(b"v1", b"v2", 1),
    lambda m: b"\n".join(m.split(b"\n")[:-1]),
    lambda m: m + b"\nextra: 1",
    lambda m: m.replace(b"nonce: ", b"nonce:  "),
    lambda m: m.replace(b"issued_at_ms: 1", b"issued_at_ms: 01"),
    lambda m: b"\n".join([m.split(b"\n")[0], *m.split(b"\n")[1:][::-1]]),
    lambda m: m.replace(b"nonce", b"Nonce"),
    lambda m: b"\xff" + m,
    lambda m: m + b" " * 20_000,
], ids=["trailing-newline", "crlf", "version", "missing-line", "extra-line", "double-space", "leading-zero",
        "reordered", "case", "not-utf8", "oversize"])
def test_only_the_canonical_text_parses(mutate: object) -> None:
    with pytest.raises(ChallengeInvalid) as refused:
        Challenge.parse(mutate(_challenge().message()))  # type: ignore[operator]
    assert refused.value.reason == "format"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_parse_refuses_arbitrary_bytes_cleanly(data: bytes) -> None:
    try:
        challenge = Challenge.parse(HEADER.encode() + b"\n" + data)
    except ChallengeInvalid as refused:
        assert refused.reason == "format"
    else:
        assert challenge.message() == HEADER.encode() + b"\n" + data


@given(nonce=st.from_regex(r"[A-Za-z0-9_-]{16,128}", fullmatch=True), token=st.binary(min_size=32, max_size=32),
       ms=st.integers(0, 10**16 - 1), port=st.integers(1, 65535))
def test_parse_inverts_message(nonce: str, token: bytes, ms: int, port: int) -> None:
    challenge = Challenge(nonce, f"https://m.example:{port}", "0x" + token.hex(), "0x" + token[::-1].hex(), ms)
    assert Challenge.parse(challenge.message()) == challenge
    assert b"\x00" not in challenge.message()


@pytest.mark.parametrize(("issued", "reason"), [
    (NOW - 60_001, "stale"), (NOW + 5_001, "future"),
])
def test_freshness_is_enforced_at_the_bounds(issued: int, reason: str) -> None:
    check_challenge(_challenge(issued_at_ms=NOW - 60_000), audience=AUDIENCE, now_ms=NOW, max_age_ms=60_000,
                    max_skew_ms=5_000)
    check_challenge(_challenge(issued_at_ms=NOW + 5_000), audience=AUDIENCE, now_ms=NOW, max_age_ms=60_000,
                    max_skew_ms=5_000)
    with pytest.raises(ChallengeInvalid) as refused:
        check_challenge(_challenge(issued_at_ms=issued), audience=AUDIENCE, now_ms=NOW, max_age_ms=60_000,
                        max_skew_ms=5_000)
    assert refused.value.reason == reason and refused.value.field == "issued_at"


@pytest.mark.parametrize("other", ["https://master.example:6444", "https://master.example:6443/", "https://evil"])
def test_another_audience_is_refused(other: str) -> None:
    with pytest.raises(ChallengeInvalid) as refused:
        check_challenge(_challenge(audience=other), audience=AUDIENCE, now_ms=NOW, max_age_ms=60_000, max_skew_ms=0)
    assert refused.value.reason == "audience"


@pytest.mark.parametrize("bound", ["now_ms", "max_age_ms", "max_skew_ms"])
@pytest.mark.parametrize("value", [-1, 10**17, 1.5, None])
def test_check_bounds_are_validated(bound: str, value: object) -> None:
    limits: dict[str, object] = {"now_ms": NOW, "max_age_ms": 1, "max_skew_ms": 1, bound: value}
    with pytest.raises(InvalidInput, match=bound):
        check_challenge(_challenge(), audience=AUDIENCE, **limits)  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", list(KEYPAIRS), ids=lambda s: s.name)
def test_verify_challenge_accepts_the_owner_and_refuses_another_key(scheme: SignatureScheme) -> None:
    keypair = KEYPAIRS[scheme]
    challenge = _challenge(address_of(keypair))
    signature = sign_personal_message(keypair, challenge.message())
    verify_challenge(challenge, signature, audience=AUDIENCE, now_ms=NOW, max_age_ms=1000, max_skew_ms=1000)

    claimed = dataclasses.replace(challenge, address="0x" + "c" * 64)  # someone else's address, our signature
    with pytest.raises(ChallengeInvalid) as refused:
        verify_challenge(claimed, sign_personal_message(keypair, claimed.message()), audience=AUDIENCE, now_ms=NOW,
                         max_age_ms=1000, max_skew_ms=1000)
    assert refused.value.reason == "address"
    with pytest.raises(BadSignature):  # a signature of the original does not cover the altered text
        verify_challenge(claimed, signature, audience=AUDIENCE, now_ms=NOW, max_age_ms=1000, max_skew_ms=1000)
    with pytest.raises(ChallengeInvalid) as refused:
        verify_challenge(challenge, signature, audience=AUDIENCE, now_ms=NOW + 1001, max_age_ms=1000, max_skew_ms=0)
    assert refused.value.reason == "stale"


@pytest.mark.parametrize("scheme", list(KEYPAIRS), ids=lambda s: s.name)
@settings(max_examples=25, deadline=None)
@given(message=st.binary(max_size=600), position=st.integers(0, 10**6), bit=st.integers(0, 7))
def test_any_flipped_bit_is_refused(scheme: SignatureScheme, message: bytes, position: int, bit: int) -> None:
    keypair = KEYPAIRS[scheme]
    signature = sign_personal_message(keypair, message)
    assert verify_personal_message(message, signature) == address_of(keypair)
    raw = bytearray(base64.b64decode(signature))
    raw[position % len(raw)] ^= 1 << bit
    with pytest.raises(BadSignature):
        verify_personal_message(message, base64.b64encode(raw).decode())
    if message:
        altered = bytearray(message)
        altered[position % len(altered)] ^= 1 << bit
        with pytest.raises(BadSignature):
            verify_personal_message(bytes(altered), signature)


@pytest.mark.parametrize("signature", [None, b"AA==", "A" * 201, "AA=", "  "])
def test_malformed_signature_arguments_are_refused(signature: object) -> None:
    with pytest.raises(BadSignature):
        verify_personal_message(b"m", signature)  # type: ignore[arg-type]


def test_oversize_messages_are_refused() -> None:
    keypair = KEYPAIRS[SignatureScheme.ED25519]
    with pytest.raises(SealError, match="16384"):
        sign_personal_message(keypair, b"x" * 16_385)
    with pytest.raises(BadSignature, match="16384"):
        verify_personal_message(b"x" * 16_385, sign_personal_message(keypair, b"x"))


def test_signs_with_the_key_the_chain_loader_reads(tmp_path: Path) -> None:
    keypair = KEYPAIRS[SignatureScheme.SECP256R1]
    key_file = tmp_path / "key"
    key_file.write_text(keypair.to_bech32())
    key_file.chmod(0o600)
    signer = load_signer(key_file=str(key_file))
    message = _challenge(signer.address).message()
    signature = sign_personal_message(signer, message)
    assert verify_personal_message(message, signature) == signer.address
    assert signature == sign_personal_message(keypair, message)


def test_error_messages_carry_no_key_material() -> None:
    keypair = KEYPAIRS[SignatureScheme.ED25519]
    signature = sign_personal_message(keypair, b"one")
    with pytest.raises(BadSignature) as refused:
        verify_personal_message(b"two", signature)
    raw = base64.b64decode(signature)
    assert all(part not in str(refused.value) for part in (signature, raw[65:].hex(), raw[1:65].hex(),
                                                            base64.b64encode(raw[65:]).decode()))


def test_tier_groups_follow_the_chain_numbering() -> None:
    assert TIER_NAMES == {1: "viewer", 2: "developer", 3: "admin", 4: "super-user"}
    assert all(TIER_NAMES[t] == TIERS[t][0] for t in TIER_NAMES)
    assert [kubernetes_groups(t) for t in (1, 2, 3, 4)] == [
        ["k3sdaas:viewer"], ["k3sdaas:developer"], ["k3sdaas:admin"], ["k3sdaas:super-user"]]
    for tier in (0, 5, -1, True, "1"):
        with pytest.raises(SealError, match="no Kubernetes access"):
            kubernetes_groups(tier)  # type: ignore[arg-type]


def test_random_nonce_from_secrets_is_accepted() -> None:
    assert _challenge(nonce=secrets.token_urlsafe(32)).nonce
