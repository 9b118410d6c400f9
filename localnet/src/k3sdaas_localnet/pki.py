"""A stand-in's own CA and serving certificate, shared by the Sui node and the Kubernetes API.

The CA is made once per directory and kept (clients pin it); the serving certificate is reissued whenever
the names it must carry change, so a new ``--tls-san`` needs no new CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT, CA_KEY = "ca.pem", "ca.key"
SERVER_CERT, SERVER_KEY = "server.pem", "server.key"
_VALIDITY = dt.timedelta(days=3650)


def write_private(path: Path, data: bytes) -> None:
    """Atomically, 0600."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _builder(subject: str, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    return (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer).public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + _VALIDITY))


def ensure_ca(state: Path, common_name: str) -> Path:
    """The CA in ``state`` (made when its certificate or key is missing); returns its certificate's path."""
    state.mkdir(parents=True, exist_ok=True)
    if not (state / CA_CERT).exists() or not (state / CA_KEY).exists():
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (_builder(common_name, name, key.public_key())
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
                .sign(key, hashes.SHA256()))
        write_private(state / CA_KEY, _key_pem(key))
        (state / CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (state / SERVER_CERT).unlink(missing_ok=True)  # issued by the CA it replaces
    return state / CA_CERT


def ensure_serving(state: Path, subject: str, names: Iterable[str], *, with_ca: bool = False) -> None:
    """The serving certificate for ``names`` (wildcard listen addresses left out), issued by ``ensure_ca``'s CA;
    ``with_ca`` appends the CA certificate to the served chain."""
    wanted = sorted({n for n in names if n not in ("0.0.0.0", "::", "")})
    if _current_sans(state / SERVER_CERT) == wanted and (state / SERVER_KEY).exists():
        return
    ca_pem = (state / CA_CERT).read_bytes()
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key((state / CA_KEY).read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(subject, ca_cert.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in wanted]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    write_private(state / SERVER_KEY, _key_pem(key))
    (state / SERVER_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM) + (ca_pem if with_ca else b""))


def _current_sans(path: Path) -> list[str] | None:
    if not path.exists():
        return None
    cert = x509.load_pem_x509_certificate(path.read_bytes())  # the first certificate of the file
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    return sorted(str(n.value) for n in sans)


def issue_client(state: Path, common_name: str, organizations: Iterable[str], days: int = 365) -> bytes:
    """A client certificate (user ``common_name``, groups ``organizations``) and its key, PEM, issued by the CA
    in ``state``: what K3s's supervisor answers for ``client-kubelet.crt``."""
    ca_cert = x509.load_pem_x509_certificate((state / CA_CERT).read_bytes())
    ca_key = serialization.load_pem_private_key((state / CA_KEY).read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations),
                         x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM) + _key_pem(key)
