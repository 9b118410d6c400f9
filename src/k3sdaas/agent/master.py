"""The worker's side of the master's API: attest first, pin the attested TLS key, then prove and register.

Order matters and is the whole point: ``attest()`` sends only a fresh nonce over an unverified TLS
connection, verifies the Nitro document (root, PCRs, the nonce) and that the certificate this very
connection presented is the one the document's ``user_data`` binds (SHA-256 of its SPKI). Only then
does the link trust that certificate (and nothing else) for the signed requests that follow.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_crypto import create_new_keypair

from ..attestation import AttestationError, PcrPolicy, VerifiedAttestation, verify_attestation
from ..chain import ChainClient, ChainSettings, Signer
from ..chain.client import json_value
from ..chain.keys import load_signer
from ..errors import InvalidInput, K3sdaasError, Unavailable
from ..seal import Challenge, sign_personal_message

MAX_RESPONSE_BYTES = 1 << 20


class AttestationMismatch(K3sdaasError):
    """The master is not the expected enclave (PCRs, root, nonce or TLS binding)."""


class MasterRefused(K3sdaasError):
    """The master answered with a JSON error; ``reason`` is its error code (token_expired, token_slashed, …)."""

    def __init__(self, message: str, reason: str, status: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.reason = reason
        self.status = status


# What the master's refusals mean for the worker's token, in words an operator acts on.
TOKEN_REASONS = {
    "token_expired": "the seal token is expired: refresh it on chain (seal_token state=refreshed)",
    "token_slashed": "the seal token was slashed below tier 1: add stake (sui_stake) before joining",
    "token_not_in_pool": "the seal token is not staked in this deployment's pool (invalid token id?)",
    "not_owner": "the node key does not own the seal token: stake with owner = the node's address",
    "tier_too_low": "the seal token's tier is below what the master requires",
    "wrong_node": "the seal token is staked for another node id",
}


def ensure_node_key(path: str | os.PathLike[str], *, create: bool = True) -> tuple[Signer, bool]:
    """The node's own Sui key from ``path`` (mode 0600), generated there first when absent and ``create``."""
    key_path = Path(path)
    created = False
    if not key_path.exists():
        if not create:
            raise InvalidInput(f"node key {key_path} does not exist", field="key_file")
        key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = create_new_keypair(scheme=SignatureScheme.ED25519)[1].to_bech32()
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, even briefly
        with os.fdopen(fd, "w") as out:
            out.write(text + "\n")
        created = True
    return load_signer(key_file=str(key_path)), created


async def registry_pcrs(settings: ChainSettings, package_id: str) -> PcrPolicy:
    """PCR0/1/2 as the deployment's on-chain EnclaveRegistry holds them."""
    async with ChainClient(settings) as client:
        deployment = await client.resolve_deployment(package_id)
        registry = await client.get_object(deployment.registry_id, field_name="package_id")
    fields = json_value(registry.json) or {}
    values = [_bytes_of(fields.get(f"pcr{i}")) for i in range(3)]
    if not all(values):
        raise AttestationMismatch(f"the enclave registry {deployment.registry_id} has no PCRs yet (update_pcrs first)",
                                  field="expected_pcrs")
    return PcrPolicy.for_image(*values)


def _bytes_of(value: Any) -> bytes:
    """A Move vector<u8> as the RPC renders it: base64 text or a list of numbers."""
    if isinstance(value, list):
        return bytes(int(v) for v in value)
    if isinstance(value, str) and value:
        return base64.b64decode(value)
    return b""


@dataclass(frozen=True)
class Attested:
    verified: VerifiedAttestation
    certificate_pem: bytes  # the master's TLS certificate, pinned from here on

    @property
    def pcrs(self) -> dict[str, str]:
        return {str(i): v.hex() for i, v in sorted(self.verified.document.pcrs.items()) if i <= 2}


class MasterLink:
    """One master, reached at ``url``; ``attest()`` must succeed before any signed request."""

    def __init__(self, url: str, *, root: x509.Certificate | None, policy: PcrPolicy, timeout: float = 10.0) -> None:
        if not url.startswith("https://"):
            raise InvalidInput("master_url must be an https:// URL", field="master_url")
        self.url = url.rstrip("/")
        self.root = root
        self.policy = policy
        self.timeout = timeout
        self.attested: Attested | None = None
        self._client: httpx.Client | None = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def attest(self) -> Attested:
        """Verify the master's attestation for a fresh nonce and pin the TLS certificate it binds."""
        nonce = secrets.token_bytes(32)
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE  # who the master is comes from the document, checked below
        with httpx.Client(verify=unverified, timeout=self.timeout) as probe:
            response = self._send(probe, "POST", "/api/v1/attestation", {"nonce": nonce.hex()})
            ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
            presented = ssl_object.getpeercert(True)
        body = self._json(response)
        try:
            document = base64.b64decode(str(body.get("document", "")), validate=True)
            certificate = x509.load_der_x509_certificate(presented)
            spki = hashlib.sha256(certificate.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest()
            verified = verify_attestation(document, root=self.root, policy=self.policy, nonce=nonce, user_data=spki)
        except AttestationError as exc:
            field = exc.field if exc.field != "user_data" else "tls_certificate"
            detail = "the TLS certificate the master presented is not the one its attestation binds" \
                if exc.field == "user_data" else str(exc)
            raise AttestationMismatch(f"master {self.url} failed attestation: {detail}", field=field) from None
        except ValueError as exc:
            raise AttestationMismatch(f"master {self.url} sent an unreadable attestation: {exc}",
                                      field="attestation") from None
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        pinned = ssl.create_default_context(cadata=pem.decode())
        # The attested certificate is the only trust anchor; the host name adds nothing to that binding.
        pinned.check_hostname = False
        self.close()
        self._client = httpx.Client(base_url=self.url, verify=pinned, timeout=self.timeout)
        self.attested = Attested(verified, pem)
        return self.attested

    def _pinned(self) -> httpx.Client:
        if self._client is None:
            raise K3sdaasError("the master's attestation must be verified before any signed request")
        return self._client

    def _send(self, client: httpx.Client, method: str, path: str, body: dict[str, Any] | None = None,
              session: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {session}"} if session else {}
        try:
            return client.request(method, f"{self.url}{path}", json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise Unavailable(f"master {self.url} is unreachable: {exc.__class__.__name__}: {exc}",
                              field="master_url") from None

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise Unavailable(f"master {self.url} sent more than {MAX_RESPONSE_BYTES} bytes", field="master_url")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Unavailable(f"master {self.url} answered {response.status_code} without a JSON object",
                              field="master_url")
        if response.status_code >= 400:
            reason = str(body.get("error", "refused"))
            hint = TOKEN_REASONS.get(reason)
            message = f"master refused ({response.status_code} {reason}): {body.get('message', '')}"
            raise MasterRefused(f"{message}; {hint}" if hint else message, reason, response.status_code,
                                field="token_id" if hint else None)
        return body

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        return self._json(self._send(self._pinned(), method, path, body, session))

    def proof(self, signer: Signer, token_id: str) -> dict[str, Any]:
        """A seal proof over a fresh challenge, signed with the node key."""
        nonce = str(self.call("POST", "/api/v1/challenge").get("nonce", ""))
        challenge = Challenge(nonce, self.url, token_id, signer.address, int(time.time() * 1000))
        return {"token_id": token_id, "address": signer.address, "nonce": nonce, "issued_at": challenge.issued_at_ms,
                "audience": self.url, "signature": sign_personal_message(signer, challenge.message())}

    def login(self, signer: Signer, token_id: str) -> dict[str, Any]:
        return self.call("POST", "/api/v1/auth", self.proof(signer, token_id))

    def register(self, signer: Signer, token_id: str, node_id: str, ip: str,
                 capacity: dict[str, Any]) -> dict[str, Any]:
        body = {**self.proof(signer, token_id), "node_id": node_id, "ip": ip, "capacity": capacity}
        return self.call("POST", "/api/v1/register-worker", body)
