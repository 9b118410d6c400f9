"""Short-lived sessions: JWTs signed by the enclave's ed25519 key (joserfc, alg ``Ed25519``).

``Ed25519`` is the fully-specified name RFC 9864 gives EdDSA over Ed25519 (plain ``EdDSA`` is
deprecated there). A session is checked by signature once; afterwards the verified claims are kept
by token (so a tampered token never matches a cached one) until they expire, which makes the
per-request check a dictionary look-up plus the revocation and tier look-ups in ``TokenStates``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from ..errors import K3sdaasError

ALG = "Ed25519"
MAX_TOKEN_CHARS = 4096
CACHE_LIMIT = 100_000


class SessionInvalid(K3sdaasError):
    """The bearer session is missing, malformed, tampered with, expired or revoked (HTTP 401)."""


@dataclass(frozen=True)
class Session:
    address: str
    tier: int
    token_id: str
    exp: int  # seconds since the epoch
    jti: str
    node_id: str | None = None  # set for a worker's session (register-worker), used by heartbeats

    def claims(self, issuer: str) -> dict[str, Any]:
        claims: dict[str, Any] = {"iss": issuer, "sub": f"sui:{self.address}", "address": self.address,
                                  "tier": self.tier, "token_id": self.token_id, "exp": self.exp, "jti": self.jti,
                                  "iat": int(time.time())}
        if self.node_id is not None:
            claims["node_id"] = self.node_id
        return claims


class SessionIssuer:
    def __init__(self, key: ed25519.Ed25519PrivateKey, issuer: str, ttl: float) -> None:
        self._key = OKPKey.import_key(key)
        self.issuer = issuer
        self.ttl = ttl
        self._verified: dict[str, Session] = {}

    def issue(self, address: str, tier: int, token_id: str, *, not_after: float | None = None,
              node_id: str | None = None) -> tuple[str, Session]:
        """A new session; it never outlives ``not_after`` (the seal token's own expiry)."""
        exp = time.time() + self.ttl
        if not_after is not None:
            exp = min(exp, not_after)
        session = Session(address, tier, token_id, int(exp), secrets.token_urlsafe(16), node_id)
        token = jwt.encode({"alg": ALG}, session.claims(self.issuer), self._key, algorithms=[ALG])
        self._remember(token, session)
        return token, session

    def _remember(self, token: str, session: Session) -> None:
        if len(self._verified) >= CACHE_LIMIT:
            now = time.time()
            self._verified = {t: s for t, s in self._verified.items() if s.exp > now}
            if len(self._verified) >= CACHE_LIMIT:
                self._verified.clear()
        self._verified[token] = session

    def verify(self, token: str) -> Session:
        session = self._verified.get(token)
        if session is None:
            session = self._decode(token)
            self._remember(token, session)
        if session.exp <= time.time():
            self._verified.pop(token, None)
            raise SessionInvalid("session expired; log in again")
        return session

    def _decode(self, token: str) -> Session:
        if len(token) > MAX_TOKEN_CHARS:
            raise SessionInvalid(f"session token is longer than {MAX_TOKEN_CHARS} characters")
        try:
            claims = jwt.decode(token, self._key, algorithms=[ALG]).claims
        except (JoseError, ValueError, TypeError):
            raise SessionInvalid("session token is malformed or not signed by this master") from None
        try:
            if claims["iss"] != self.issuer:
                raise SessionInvalid("session token was issued by another master")
            node_id = claims.get("node_id")
            return Session(str(claims["address"]), int(claims["tier"]), str(claims["token_id"]), int(claims["exp"]),
                           str(claims["jti"]), None if node_id is None else str(node_id))
        except (KeyError, TypeError, ValueError):
            raise SessionInvalid("session token lacks the claims this master issues") from None
