"""K3s join tokens and the server CA check (k3s-io/k3s pkg/clientaccess/token.go)."""

from __future__ import annotations

import base64
import hashlib
import re
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass

TOKEN_PREFIX = "K10"
BOOTSTRAP_TOKEN = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
MAX_CA_BYTES = 1 << 20
TIMEOUT = 10.0


class JoinError(Exception):
    """The agent cannot join (bad token, CA mismatch); retrying would not help."""


@dataclass(frozen=True)
class Token:
    ca_hash: str  # hex sha256 of the server CA bundle, "" for a short token
    username: str
    password: str

    @property
    def is_bootstrap(self) -> bool:
        return self.username == "" and BOOTSTRAP_TOKEN.match(self.password) is not None

    def authorization(self) -> str:
        """The header K3s sends: Bearer for a bootstrap token, Basic user:password otherwise."""
        if self.is_bootstrap or not self.username:
            return f"Bearer {self.password}"
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def parse_token(text: str) -> Token:
    """``K10<hash>::<creds>`` (secure) or bare ``<creds>`` (short); creds are ``user:pw`` or ``id.secret``."""
    text = text.strip()
    if not text:
        raise JoinError("token is empty")
    ca_hash, creds = "", text
    if text.startswith(TOKEN_PREFIX) and "::" in text:
        ca_hash, creds = text[len(TOKEN_PREFIX):].split("::", 1)
        if not re.fullmatch(r"[0-9a-f]{64}", ca_hash):
            raise JoinError("invalid token format: the CA hash after K10 must be 64 lowercase hex digits")
    if BOOTSTRAP_TOKEN.match(creds):
        return Token(ca_hash, "", creds)
    if ":" in creds:
        username, password = creds.split(":", 1)
        return Token(ca_hash, username, password)
    return Token(ca_hash, "", creds)


def _get_cacerts(url: str, context: ssl.SSLContext) -> bytes:
    with urllib.request.urlopen(f"{url.rstrip('/')}/cacerts", context=context, timeout=TIMEOUT) as response:
        body: bytes = response.read(MAX_CA_BYTES + 1)
    if len(body) > MAX_CA_BYTES:
        raise JoinError(f"{url}/cacerts: CA bundle larger than {MAX_CA_BYTES} bytes")
    return body


def fetch_server_ca(url: str, token: Token) -> bytes:
    """The server's CA bundle, trusted the way K3s trusts it.

    A CA the OS already trusts is accepted without the hash. Otherwise the bundle is fetched without
    verification and must hash to the token's value; a short token (no hash) accepts it as it is.
    """
    try:
        return _get_cacerts(url, ssl.create_default_context())
    except urllib.error.URLError as error:
        if not isinstance(error.reason, ssl.SSLError):
            raise
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    bundle = _get_cacerts(url, insecure)
    digest = hashlib.sha256(bundle).hexdigest()
    if token.ca_hash and digest != token.ca_hash:
        raise JoinError(f"token CA hash does not match the Cluster CA certificate hash: {token.ca_hash} != {digest}")
    return bundle
