"""The three real AWS-signed documents verify with the AWS root at their own time, and only then."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import cbor2
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from k3sdaas.attestation import (
    ChainError,
    PcrPolicy,
    PolicyError,
    aws_nitro_root,
    load_root,
    parse_payload,
    verify_attestation,
)
from k3sdaas.attestation.cose import decode_sign1
from k3sdaas.nitro.measure import measure_string
from k3sdaas_localnet.nitro.pki import SimulatedPki

PCR0 = "f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d5599936332687e6f66fc890ac8cf150142d8b"
PCR1 = "bcdf05fefccaa8e55bf2c8d6dee9e79bbff31e34bf28a99aa19e6b29c37ee80b214a414b7607236edf26fcb78654e63f"
PCR2 = "d8f114da658de5481f8d9ec73907feb553560787522f705c92d7d96beed8e15e2aa611984e098c576832c292e8dc469a"
PCR3 = "4a9329d69c836267b18abbf9f4a38889124490453419e426818626348d21f989dc930b1562682a9082887454e53425aa"
PCR8 = "8790eb3cce6c83d07e84b126dc61ca923333d6f66615c4a79157de48c5ab2418bdc60746ea7b7afbff03a1c6210201cb"
VALID_INSTANCE = "i-020b6af9246d90e92"


def test_embedded_root_is_the_published_aws_root(aws_root_path):
    embedded = aws_nitro_root().public_bytes(Encoding.DER)
    assert hashlib.sha256(embedded).hexdigest() == "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
    assert load_root(aws_root_path).public_bytes(Encoding.DER) == embedded


def test_valid_document_passes_full_policy(valid_doc):
    policy = PcrPolicy.for_image(PCR0, PCR1, PCR2, pcr3=PCR3, pcr4=measure_string(VALID_INSTANCE), pcr8=PCR8)
    doc = parse_payload(decode_sign1(valid_doc.data).payload)
    result = verify_attestation(valid_doc.data, at=valid_doc.at, policy=policy, nonce=doc.nonce)
    assert result.document.module_id == "i-020b6af9246d90e92-enc0183d09086c24190"
    assert result.document.nonce is not None and len(result.document.nonce) == 256
    assert result.document.public_key is None and result.document.user_data is None
    subjects = result.summary()["chain"]
    assert len(subjects) == 5
    assert subjects[0].startswith("CN=i-020b6af9246d90e92-enc0183d09086c24190.us-east-1.aws")
    assert subjects[-1] == "CN=aws.nitro-enclaves,OU=AWS,O=Amazon,C=US"


def test_debug_document_is_refused_unless_allowed(debug_doc):
    with pytest.raises(PolicyError, match="PCR0 is all zero"):
        verify_attestation(debug_doc.data, at=debug_doc.at)
    result = verify_attestation(
        debug_doc.data,
        at=debug_doc.at,
        policy=PcrPolicy(allow_debug=True),
        public_key=b"my super secret key",
        user_data=b"hello, world!",
    )
    assert result.document.nonce is None


def test_base64_document_needs_debug_allowance(base64_doc):
    with pytest.raises(PolicyError):
        verify_attestation(base64_doc.data, at=base64_doc.at)
    result = verify_attestation(base64_doc.data, at=base64_doc.at, policy=PcrPolicy(allow_debug=True))
    assert result.document.module_id == "i-0918f6c55e3b61d89-enc018aa8b8e2285d13"


@pytest.mark.parametrize("shift", [timedelta(days=4 * 365), -timedelta(seconds=4), timedelta(hours=3)])
def test_verification_outside_the_chain_window_fails(valid_doc, shift):
    # Window is 08:57:59 .. 11:58:02 UTC on 2022-10-13; the document time is 08:58:02.136.
    with pytest.raises(ChainError, match="is not valid at"):
        verify_attestation(valid_doc.data, at=valid_doc.at + shift)


def test_verification_at_wall_clock_time_fails(valid_doc):
    with pytest.raises(ChainError, match="certificate is not valid at"):
        verify_attestation(valid_doc.data)


@pytest.mark.parametrize("fixture", ["valid_doc", "debug_doc", "base64_doc"])
def test_other_pinned_root_refuses_real_documents(fixture, request, test_pki: SimulatedPki):
    doc = request.getfixturevalue(fixture)
    with pytest.raises(ChainError, match=r"cabundle\[0\] is not the pinned root"):
        verify_attestation(doc.data, root=test_pki.root.cert, at=doc.at, policy=PcrPolicy(allow_debug=True))


@pytest.mark.parametrize("index", [0, 1, 2, 3, 4, 8])
def test_pcr_mismatch_is_refused(valid_doc, index):
    with pytest.raises(PolicyError, match=f"PCR{index} is "):
        verify_attestation(valid_doc.data, at=valid_doc.at, policy=PcrPolicy(expected={index: bytes(range(48))}))


def test_pcr_not_in_document_is_refused(valid_doc):
    with pytest.raises(PolicyError, match="PCR20 is not in the document"):
        verify_attestation(valid_doc.data, at=valid_doc.at, policy=PcrPolicy(expected={20: bytes(48)}))


@pytest.mark.parametrize("binding", ["nonce", "public_key", "user_data"])
def test_binding_mismatch_is_refused(valid_doc, debug_doc, binding):
    # valid_doc has only a nonce, debug_doc only public_key/user_data: both absent and different values fail.
    for doc in (valid_doc, debug_doc):
        with pytest.raises(PolicyError, match=binding):
            verify_attestation(doc.data, at=doc.at, policy=PcrPolicy(allow_debug=True), **{binding: b"other"})


def test_tag_18_envelope_is_accepted(valid_doc):
    tagged = cbor2.dumps(cbor2.CBORTag(18, cbor2.loads(valid_doc.data)))
    assert tagged[0] == 0xD2
    assert verify_attestation(tagged, at=valid_doc.at).document.timestamp == 1665651482136


@pytest.mark.parametrize("fixture", ["valid_doc", "debug_doc", "base64_doc"])
def test_reencoding_is_byte_identical(fixture, request):
    doc = request.getfixturevalue(fixture)
    message = decode_sign1(doc.data)
    assert message.encode() == doc.data
    assert parse_payload(message.payload).to_cbor() == message.payload


@pytest.mark.parametrize(("fixture", "instance"), [("valid_doc", VALID_INSTANCE), ("debug_doc", "i-03ad7cdb817437eeb")])
def test_pcr4_is_the_extended_instance_id(fixture, instance, request):
    doc = parse_payload(decode_sign1(request.getfixturevalue(fixture).data).payload)
    assert doc.pcrs[4] == measure_string(instance)
