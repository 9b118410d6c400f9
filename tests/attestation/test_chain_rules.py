"""Validly signed documents whose chains break one rule each: the chain check names the rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from k3sdaas.attestation import AttestationDocument, ChainError, SignatureError, verify_attestation
from k3sdaas.attestation.cose import sign1
from k3sdaas_localnet.nitro import pki as testpki
from k3sdaas_localnet.nitro.pki import Issued, SimulatedPki, issue, issue_leaf

from .conftest import INSTANCE_ID, MODULE_ID

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def pki() -> SimulatedPki:
    """Issued an hour before NOW, which is fixed at import time: every test verifies at NOW."""
    return SimulatedPki.generate(INSTANCE_ID, NOW - timedelta(hours=1))


def _document(pki: SimulatedPki, leaf: Issued, cabundle: list[bytes] | None = None, at: datetime = NOW) -> bytes:
    doc = AttestationDocument(
        module_id=MODULE_ID,
        timestamp=int(at.timestamp() * 1000),
        pcrs={i: bytes([i + 1]) * 48 for i in range(16)},
        certificate=leaf.der,
        cabundle=cabundle if cabundle is not None else pki.cabundle(),
    )
    return sign1(doc.to_cbor(), leaf.key).encode()


def _leaf(
    pki: SimulatedPki,
    extensions: testpki.Extensions,
    *,
    issuer: Issued | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> Issued:
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, f"{MODULE_ID}.us-east-1.aws")])
    return issue(
        subject, issuer or pki.instance, NOW - timedelta(seconds=3), testpki.LEAF_LIFETIME, extensions, key=key
    )


LEAF_USAGE = (x509.KeyUsage(True, True, False, False, False, False, False, False, False), False)
LEAF_BC = (x509.BasicConstraints(ca=False, path_length=None), True)


def _verify(data: bytes, pki: SimulatedPki, at: datetime = NOW):
    return verify_attestation(data, root=pki.root.cert, at=at)


def test_simulated_document_verifies(pki):
    assert _verify(_document(pki, issue_leaf(pki.instance, MODULE_ID, NOW)), pki).document.module_id == MODULE_ID


def test_leaf_that_is_a_ca_is_refused(pki):
    leaf = _leaf(pki, [(x509.BasicConstraints(ca=True, path_length=None), True), LEAF_USAGE])
    with pytest.raises(ChainError, match="must not be a CA"):
        _verify(_document(pki, leaf), pki)


def test_leaf_without_digital_signature_is_refused(pki):
    usage = x509.KeyUsage(False, True, False, False, False, False, False, False, False)
    with pytest.raises(ChainError, match="digitalSignature"):
        _verify(_document(pki, _leaf(pki, [LEAF_BC, (usage, False)])), pki)


def test_leaf_on_another_curve_is_refused(pki):
    leaf = _leaf(pki, [LEAF_BC, LEAF_USAGE], key=ec.generate_private_key(ec.SECP256R1()))
    doc = AttestationDocument(MODULE_ID, int(NOW.timestamp() * 1000), {0: bytes(48)}, leaf.der, pki.cabundle())
    # Signed with some P-384 key: the curve check must come before any signature maths.
    with pytest.raises(ChainError, match="not an ECDSA P-384 key"):
        _verify(sign1(doc.to_cbor(), pki.instance.key).encode(), pki)


def test_leaf_signed_with_sha256_is_refused(pki):
    good = issue_leaf(pki.instance, MODULE_ID, NOW)
    builder = (
        x509.CertificateBuilder()
        .subject_name(good.cert.subject)
        .issuer_name(good.cert.issuer)
        .public_key(good.key.public_key())
        .serial_number(7)
        .not_valid_before(good.cert.not_valid_before_utc)
        .not_valid_after(good.cert.not_valid_after_utc)
    )
    leaf = Issued(builder.sign(pki.instance.key, hashes.SHA256()), good.key)
    with pytest.raises(ChainError, match="expected ecdsa-with-SHA384"):
        _verify(_document(pki, leaf), pki)


def test_missing_intermediate_breaks_the_issuer_link(pki):
    bundle = pki.cabundle()
    del bundle[2]  # zonal
    leaf = issue_leaf(pki.instance, MODULE_ID, NOW)
    with pytest.raises(ChainError, match=r"cabundle\[2\] issuer is not the subject of cabundle\[1\]"):
        _verify(_document(pki, leaf, bundle), pki)


def test_path_length_is_enforced(pki):
    # An extra CA under the instance CA (pathlen 0) issues the leaf.
    extra = issue(
        x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "extra")]),
        pki.instance,
        NOW,
        timedelta(days=1),
        [(x509.BasicConstraints(ca=True, path_length=None), True), (testpki.CA_KEY_USAGE, True)],
    )
    leaf = _leaf(pki, [LEAF_BC, LEAF_USAGE], issuer=extra)
    with pytest.raises(ChainError, match=r"cabundle\[3\] allows 0 CAs below it"):
        _verify(_document(pki, leaf, [*pki.cabundle(), extra.der]), pki)


def test_intermediate_without_ca_flag_is_refused(pki):
    fake = issue(
        x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "not-a-ca")]),
        pki.zonal,
        NOW,
        timedelta(days=1),
        [(x509.BasicConstraints(ca=False, path_length=None), True)],
    )
    leaf = _leaf(pki, [LEAF_BC, LEAF_USAGE], issuer=fake)
    bundle = [*pki.cabundle()[:3], fake.der]
    with pytest.raises(ChainError, match=r"cabundle\[3\] is not a CA"):
        _verify(_document(pki, leaf, bundle), pki)


def test_expired_intermediate_is_refused():
    # A chain issued 2 days ago: its 1-day instance CA has expired, the leaf is issued for the doc time.
    old = SimulatedPki.generate(INSTANCE_ID, NOW - timedelta(days=2))
    leaf = issue_leaf(old.instance, MODULE_ID, NOW)
    with pytest.raises(ChainError, match=r"cabundle\[3\] is not valid at"):
        _verify(_document(old, leaf), old)


def test_timestamp_outside_leaf_validity_is_refused(pki):
    leaf = issue_leaf(pki.instance, MODULE_ID, NOW)
    with pytest.raises(ChainError, match="timestamp is outside"):
        _verify(_document(pki, leaf, at=NOW - timedelta(minutes=1)), pki, at=NOW)


def test_signature_by_another_key_is_refused(pki):
    leaf = issue_leaf(pki.instance, MODULE_ID, NOW)
    impostor = replace(leaf, key=ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(SignatureError):
        _verify(_document(pki, impostor), pki)
