"""The stand-in's CA, serving certificate, admin credential and kubeconfig.

The CA is made once per state directory and kept (agents pin its hash through the ``K10…`` token); the
serving certificate is reissued whenever the names it must carry change (``--host``, ``--tls-san``).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import secrets
from pathlib import Path

import yaml  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT, CA_KEY = "ca.pem", "ca.key"
SERVER_CERT, SERVER_KEY = "server.pem", "server.key"
ADMIN_TOKEN, KUBECONFIG = "admin.token", "admin.kubeconfig"
DEFAULT_SANS = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "127.0.0.1", "::1")
_VALIDITY = dt.timedelta(days=3650)


def _write_private(path: Path, data: bytes) -> None:
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


def ensure_pki(state: Path, names: list[str]) -> None:
    """CA (kept), serving certificate for ``names`` plus the defaults, and the admin token (kept)."""
    state.mkdir(parents=True, exist_ok=True)
    if not (state / CA_CERT).exists() or not (state / CA_KEY).exists():
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "k3s-server-ca@k3sdaas-localnet")])
        cert = (_builder("k3s-server-ca@k3sdaas-localnet", name, key.public_key())
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
                .sign(key, hashes.SHA256()))
        _write_private(state / CA_KEY, _key_pem(key))
        (state / CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (state / SERVER_CERT).unlink(missing_ok=True)
    wanted = sorted(set(DEFAULT_SANS) | {n for n in names if n not in ("0.0.0.0", "::", "")})
    if _current_sans(state / SERVER_CERT) != wanted or not (state / SERVER_KEY).exists():
        ca_cert = x509.load_pem_x509_certificate((state / CA_CERT).read_bytes())
        ca_key = serialization.load_pem_private_key((state / CA_KEY).read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (_builder("k3s", ca_cert.subject, key.public_key())
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in wanted]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        _write_private(state / SERVER_KEY, _key_pem(key))
        (state / SERVER_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if not (state / ADMIN_TOKEN).exists():
        _write_private(state / ADMIN_TOKEN, secrets.token_hex(32).encode())


def _current_sans(path: Path) -> list[str] | None:
    if not path.exists():
        return None
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    return sorted(str(n.value) for n in sans)


def admin_token(state: Path) -> str:
    return (state / ADMIN_TOKEN).read_text().strip()


def write_kubeconfig(state: Path, server: str) -> Path:
    """The cluster-admin kubeconfig (CA embedded), written atomically: its presence means "serving"."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "default", "preferences": {},
        "clusters": [{"name": "default", "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode((state / CA_CERT).read_bytes()).decode()}}],
        "users": [{"name": "default", "user": {"token": admin_token(state)}}],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
    }
    _write_private(state / KUBECONFIG, yaml.safe_dump(config, sort_keys=False).encode())
    return state / KUBECONFIG
