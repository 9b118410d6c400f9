"""The master's identity, made inside at every start: a TLS key and certificate, an ed25519 key, and the
Nitro attestation document binding both (``public_key`` = the ed25519 key, ``user_data`` = SHA-256 of the
TLS certificate's SubjectPublicKeyInfo), refreshed every ``attestation_interval``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import ipaddress
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from ..attestation.cose import decode_sign1
from ..attestation.document import parse_payload
from ..attestation.nsm import NsmClient, open_transport
from ..errors import K3sdaasError

TLS_VALIDITY = dt.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    spki_sha256: bytes


def _names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_tls(directory: Path, hosts: list[str]) -> TlsFiles:
    """A fresh P-256 key and a self-signed certificate for ``hosts``; the key file is 0600, PKCS#8.

    Clients pin this certificate through the attestation (its SPKI hash is the document's user_data),
    so no outside CA is involved; ``cert`` is also the file to trust for curl's ``--cacert``.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "k3sdaas-nautilus")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + TLS_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "master.key", directory / "master.pem"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(cert_path, key_path, spki_sha256(cert))


def spki_sha256(cert: x509.Certificate) -> bytes:
    return hashlib.sha256(cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest()


class Attestor:
    """Attestation documents from the NSM for one ed25519 key and one TLS SPKI hash.

    ``current()`` is the document of the last refresh (at most ``interval`` seconds old); a request
    with a nonce gets a fresh document carrying it. Without an NSM (no /dev/nsm, no simulator socket)
    every call raises ``Unavailable`` saying so, and the rest of the service still runs.
    """

    def __init__(self, public_key: bytes, spki_hash: bytes, interval: float, nsm_socket: str | None) -> None:
        self.public_key = public_key
        self.spki_hash = spki_hash
        self.interval = interval
        self._nsm_socket = nsm_socket
        self._document: bytes | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    def _attest(self, nonce: bytes | None) -> bytes:
        env = {"K3SDAAS_NSM_SOCKET": self._nsm_socket} if self._nsm_socket else None
        client = NsmClient(open_transport(env))
        return client.attestation(public_key=self.public_key, user_data=self.spki_hash, nonce=nonce)

    async def document(self, nonce: bytes | None = None) -> bytes:
        if nonce is not None:
            return await asyncio.to_thread(self._attest, nonce)
        async with self._lock:
            if self._document is None or time.monotonic() - self._at >= self.interval:
                self._document = await asyncio.to_thread(self._attest, None)
                self._at = time.monotonic()
            return self._document

    async def refresh_forever(self) -> None:
        """Keep ``current`` fresh; an NSM that fails is retried at the next interval."""
        while True:
            with contextlib.suppress(K3sdaasError):  # reported to whoever asks for the document
                await self.document()
            await asyncio.sleep(self.interval)


def describe(document: bytes) -> dict[str, Any]:
    """The seed's fields of a document, plus the document itself (base64)."""
    envelope = decode_sign1(document)
    payload = parse_payload(envelope.payload)
    return {
        "enclave_id": payload.module_id,
        "measurement": payload.pcrs.get(0, b"").hex(),
        "pcrs": {str(index): value.hex() for index, value in sorted(payload.pcrs.items()) if index <= 8},
        "signature": envelope.signature.hex(),
        "certificate": base64.b64encode(payload.certificate).decode(),
        "tee_type": "aws-nitro-enclaves",
        "security_level": "debug" if not any(payload.pcrs.get(0, b"")) else "production",
        "timestamp_ms": payload.timestamp,
        "public_key": (payload.public_key or b"").hex(),
        "user_data": (payload.user_data or b"").hex(),
        "nonce": (payload.nonce or b"").hex() if payload.nonce else None,
        "document": base64.b64encode(document).decode(),
    }


def new_enclave_key() -> tuple[ed25519.Ed25519PrivateKey, bytes]:
    key = ed25519.Ed25519PrivateKey.generate()
    return key, key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

