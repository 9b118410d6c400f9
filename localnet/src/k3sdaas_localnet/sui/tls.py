"""Self-signed CA and server certificate for the node's TLS endpoint.

pysui's gRPC client always speaks TLS, so the stand-in serves TLS with a certificate issued by a CA it
generates once per state directory; clients trust ``ca.pem`` (see the package docstring for how).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CA_FILE = "ca.pem"
CERT_FILE = "server.pem"
KEY_FILE = "server.key"
_VALIDITY = dt.timedelta(days=3650)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    signing_key: ec.EllipticCurvePrivateKey,
    *,
    is_ca: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def ensure_certificates(directory: Path) -> Path:
    """Create the CA and server certificate in ``directory`` unless present; return the CA path."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_path = directory / CA_FILE
    if ca_path.exists() and (directory / CERT_FILE).exists() and (directory / KEY_FILE).exists():
        return ca_path
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("k3sdaas localnet CA")
    ca_cert = _issue(ca_name, ca_name, ca_key.public_key(), ca_key, is_ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _issue(_name("localhost"), ca_cert.subject, server_key.public_key(), ca_key, is_ca=False)
    key_path = directory / KEY_FILE
    key_path.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    (directory / CERT_FILE).write_bytes(
        server_cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return ca_path


def server_context(directory: Path) -> ssl.SSLContext:
    """TLS context for the gRPC server (HTTP/2 via ALPN, as grpclib clients require)."""
    ensure_certificates(directory)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(directory / CERT_FILE, directory / KEY_FILE)
    ctx.set_alpn_protocols(["h2"])
    return ctx


def client_context(ca_path: Path | str) -> ssl.SSLContext:
    """TLS context trusting only ``ca_path``, with the settings grpclib's default context uses."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_path))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2"])
    return ctx
