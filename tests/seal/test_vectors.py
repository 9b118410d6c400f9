"""Interop: signatures of Mysten's TypeScript SDK and pysui verify here, ours verify there.

The committed vectors (tests/fixtures/seal/vectors.json, made by make_vectors.py) are always checked;
the test that runs node regenerates them and asks the SDK about fresh signatures of ours.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import secrets
import shutil
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pysui_fastcrypto as pfc
import pytest
from pysui.sui.sui_crypto import SignatureScheme, create_new_keypair, keypair_from_keystring

from k3sdaas.chain.keys import address_of
from k3sdaas.seal import (
    BadSignature,
    Challenge,
    personal_message_digest,
    sign_personal_message,
    verify_personal_message,
)

HERE = Path(__file__).parent
VECTORS: dict[str, Any] = json.loads((HERE.parent / "fixtures" / "seal" / "vectors.json").read_text("utf-8"))
SCHEMES = {"ed25519": SignatureScheme.ED25519, "secp256k1": SignatureScheme.SECP256K1,
           "secp256r1": SignatureScheme.SECP256R1}


def _cases(group: str) -> Any:
    return pytest.mark.parametrize("case", VECTORS[group], ids=[c["name"] for c in VECTORS[group]])


def _message(case: dict[str, Any]) -> bytes:
    return base64.b64decode(case["message_b64"])


def _fastcrypto_verifies(message: bytes, signature: str) -> bool:
    """Mysten's Rust fastcrypto (pysui's backend) on the raw signature over the personal-message digest."""
    raw = base64.b64decode(signature)
    scheme = {0: SignatureScheme.ED25519, 1: SignatureScheme.SECP256K1, 2: SignatureScheme.SECP256R1}[raw[0]]
    digest = base64.b64encode(personal_message_digest(message)).decode()
    return bool(pfc.verify_pubk(scheme, raw[65:], digest, base64.b64encode(raw[1:65]).decode()))


def test_vectors_cover_every_scheme_and_defect() -> None:
    assert {c["scheme"] for c in VECTORS["ts"]} == set(SCHEMES)
    assert {c["defect"] for c in VECTORS["negative"]} >= {"wrong message", "flipped byte", "wrong flag", "wrong length",
                                                          "high-S"}
    assert VECTORS["versions"]["@mysten/sui"] == json.loads((HERE / "ts" / "package.json").read_text())[
        "dependencies"]["@mysten/sui"]


@_cases("ts")
def test_sdk_signature_verifies_and_names_the_signer(case: dict[str, Any]) -> None:
    assert case["ts_valid"] and case["ts_address"] == case["address"]
    assert verify_personal_message(_message(case), case["signature"]) == case["address"]
    assert address_of(keypair_from_keystring(case["secret_key"])) == case["address"]


@_cases("ts")
def test_our_signature_is_the_sdk_signature_and_fastcrypto_accepts_it(case: dict[str, Any]) -> None:
    # All three schemes sign deterministically (RFC 6979 for ECDSA), so equal bytes mean the same digest.
    ours = sign_personal_message(keypair_from_keystring(case["secret_key"]), _message(case))
    assert ours == case["signature"]
    assert _fastcrypto_verifies(_message(case), ours)


@_cases("pysui")
def test_pysui_signatures_get_the_sdk_verdict(case: dict[str, Any]) -> None:
    keypair = keypair_from_keystring(case["secret_key"])
    assert keypair.sign_personal_message(case["message_b64"]) == case["signature"]  # still pysui's output
    if case["ts_valid"]:
        assert verify_personal_message(_message(case), case["signature"]) == case["address"] == case["ts_address"]
    else:
        # pysui 1.5.1 drops 0x00 bytes from the BCS payload; the SDK refuses such signatures and so do we.
        assert 0 in _message(case)
        with pytest.raises(BadSignature, match="does not verify"):
            verify_personal_message(_message(case), case["signature"])


def test_pysui_keypairs_interoperate_on_every_challenge() -> None:
    """Challenges are text without NUL bytes, the messages pysui signs correctly."""
    assert all(c["ts_valid"] for c in VECTORS["pysui"] if 0 not in _message(c))
    challenges = [c for c in VECTORS["pysui"] if c["name"].endswith("/challenge")]
    assert len(challenges) == 3
    assert all(c["ts_valid"] and 0 not in Challenge.parse(_message(c)).message() for c in challenges)


@_cases("negative")
def test_broken_signature_is_refused_as_the_sdk_refuses_it(case: dict[str, Any]) -> None:
    assert case["ts_valid"] is False
    with pytest.raises(BadSignature) as refused:
        verify_personal_message(_message(case), case["signature"])
    text = str(refused.value)
    assert case["signature"] not in text or not case["signature"]  # no key or signature material in messages
    if case["defect"] == "high-S":
        assert "low-S" in text
        assert not _fastcrypto_verifies(_message(case), case["signature"])


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (the committed vectors are checked)")
def test_typescript_sdk_regenerates_the_vectors_and_accepts_ours() -> None:
    spec = importlib.util.spec_from_file_location("make_vectors", HERE / "make_vectors.py")
    assert spec and spec.loader
    generator: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert generator.build() == VECTORS  # same SDK signatures, same verdicts on pysui's and the broken ones

    fresh = []
    for scheme in SCHEMES.values():
        _, keypair = create_new_keypair(scheme)
        address = address_of(keypair)
        challenge = Challenge(secrets.token_urlsafe(24), "https://127.0.0.1:6443", "0x" + secrets.token_hex(32),
                              address, int(time.time() * 1000))
        for message in (challenge.message(), secrets.token_bytes(300) + b"\x00"):
            fresh.append({"name": f"{scheme.name}/{len(fresh)}", "message_b64": base64.b64encode(message).decode(),
                          "signature": sign_personal_message(keypair, message), "address": address})
    verdicts = generator.node("verify", fresh)
    assert [(v["valid"], v.get("address")) for v in verdicts] == [(True, c["address"]) for c in fresh]
