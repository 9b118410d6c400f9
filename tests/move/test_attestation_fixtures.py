"""The attestation documents embedded in move/tests/attestation_documents.move are the real ones.

The Move tests pin the clock to each document's timestamp and configure the registry with its
PCRs; a wrong byte there would make `load_nitro_attestation` or the PCR check fail for the wrong
reason on a machine with `sui`. Here the embedded hex, times and PCRs are checked against the
fixture files, decoded independently with cbor2.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "move"

Constants = dict[str, int | bytes]


def decode_payload(document: bytes) -> dict[str, Any]:
    envelope = cbor2.loads(document)  # COSE_Sign1: [protected, unprotected, payload, signature]
    payload: dict[str, Any] = cbor2.loads(envelope[2])
    return payload


@pytest.fixture(scope="module")
def embedded(move_dir: Path, move_constants: Callable[[str], Constants]) -> Constants:
    return move_constants((move_dir / "tests" / "attestation_documents.move").read_text())


@pytest.mark.parametrize(
    ("prefix", "fixture"),
    [("VALID", "valid-attestation-doc-bytes"), ("DEBUG", "debug-mode-attestation-doc-bytes")],
)
def test_embedded_document_and_timestamp_match_the_fixture(embedded: Constants, prefix: str, fixture: str) -> None:
    document = (FIXTURES / fixture).read_bytes()
    assert embedded[f"{prefix}_DOCUMENT"] == document
    assert embedded[f"{prefix}_TIMESTAMP_MS"] == decode_payload(document)["timestamp"]


def test_valid_document_pcrs_match_and_it_carries_no_key(embedded: Constants) -> None:
    payload = decode_payload((FIXTURES / "valid-attestation-doc-bytes").read_bytes())
    for index in range(3):
        assert embedded[f"VALID_PCR{index}"] == payload["pcrs"][index]
    # registry_tests expects EInvalidPublicKey for this document once its PCRs are configured.
    assert payload["public_key"] is None


def test_debug_document_has_all_zero_pcrs(embedded: Constants) -> None:
    payload = decode_payload((FIXTURES / "debug-mode-attestation-doc-bytes").read_bytes())
    # registry_tests expects EDebugPcrs for this document.
    assert all(payload["pcrs"][index] == bytes(48) for index in range(3))
