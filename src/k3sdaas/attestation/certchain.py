"""The document's certificate chain: leaf <- cabundle[-1] <- ... <- cabundle[0] == pinned root."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import SignatureAlgorithmOID

from k3sdaas.attestation.errors import ChainError

LEAF = "certificate"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def check_pinned_root(cabundle: Sequence[bytes], root: x509.Certificate) -> None:
    """Cheap first gate: the bundle must start with exactly the pinned root's DER."""
    if cabundle[0] != root.public_bytes(Encoding.DER):
        raise ChainError("cabundle[0] is not the pinned root", field="cabundle")


def parse_certificate(der: bytes, position: str) -> x509.Certificate:
    try:
        with warnings.catch_warnings():
            # cryptography only warns about RFC 5280 violations it will reject later; reject them now.
            warnings.simplefilter("error", CryptographyDeprecationWarning)
            cert = x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion, CryptographyDeprecationWarning) as exc:
        raise ChainError(f"{position} is not a valid DER certificate: {exc}", field=position) from exc
    try:
        algorithm = cert.signature_algorithm_oid
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ChainError(f"{position} cannot be read: {exc}", field=position) from exc
    if algorithm != SignatureAlgorithmOID.ECDSA_WITH_SHA384:
        raise ChainError(
            f"{position} is signed with {algorithm.dotted_string}, expected ecdsa-with-SHA384", field=position
        )
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise ChainError(f"{position} key is not an ECDSA P-384 key", field=position)
    return cert


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType], position: str) -> x509.Extension | None:
    try:
        return cert.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None
    except ValueError as exc:
        raise ChainError(f"{position} has malformed extensions: {exc}", field=position) from exc


def _check_validity(cert: x509.Certificate, position: str, at: datetime) -> None:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if not start <= at <= end:
        raise ChainError(f"{position} is not valid at {_iso(at)} (valid {_iso(start)} to {_iso(end)})", field=position)


def _check_ca(cert: x509.Certificate, position: str, cas_below: int) -> None:
    constraints = _extension(cert, x509.BasicConstraints, position)
    if constraints is None or not constraints.critical or not constraints.value.ca:
        raise ChainError(f"{position} is not a CA (critical basicConstraints CA:TRUE required)", field=position)
    path_length = constraints.value.path_length
    if path_length is not None and cas_below > path_length:
        raise ChainError(f"{position} allows {path_length} CAs below it, chain has {cas_below}", field=position)
    usage = _extension(cert, x509.KeyUsage, position)
    if usage is None or not usage.value.key_cert_sign:
        raise ChainError(f"{position} key usage does not allow keyCertSign", field=position)


def _check_leaf(cert: x509.Certificate) -> None:
    constraints = _extension(cert, x509.BasicConstraints, LEAF)
    if constraints is not None and constraints.value.ca:
        raise ChainError("certificate (leaf) must not be a CA", field=LEAF)
    usage = _extension(cert, x509.KeyUsage, LEAF)
    if usage is None or not usage.value.digital_signature:
        raise ChainError("certificate (leaf) key usage does not allow digitalSignature", field=LEAF)


def _check_issued_by(cert: x509.Certificate, position: str, issuer: x509.Certificate, issuer_position: str) -> None:
    try:
        cert.verify_directly_issued_by(issuer)
    except ValueError:
        raise ChainError(f"{position} issuer is not the subject of {issuer_position}", field=position) from None
    except InvalidSignature:
        raise ChainError(
            f"{position} signature does not verify with the key of {issuer_position}", field=position
        ) from None


def verify_chain(
    certificate: x509.Certificate, cabundle: Sequence[bytes], root: x509.Certificate, at: datetime
) -> list[x509.Certificate]:
    """Verify leaf -> root at time ``at``; returns the chain leaf first. CRLs are not consulted (as AWS advises)."""
    check_pinned_root(cabundle, root)
    positions = [LEAF] + [f"cabundle[{index}]" for index in range(len(cabundle) - 1, -1, -1)]
    chain = [certificate] + [
        parse_certificate(der, pos) for der, pos in zip(reversed(cabundle), positions[1:], strict=True)
    ]
    _check_leaf(certificate)
    for depth, (cert, position) in enumerate(zip(chain, positions, strict=True)):
        _check_validity(cert, position, at)
        if depth > 0:
            _check_ca(cert, position, cas_below=depth - 1)
        issuer_depth = min(depth + 1, len(chain) - 1)  # the root issues itself
        _check_issued_by(cert, position, chain[issuer_depth], positions[issuer_depth])
    return chain
