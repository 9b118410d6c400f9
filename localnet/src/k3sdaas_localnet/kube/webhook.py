"""Webhook token authentication, as kube-apiserver does it (k8s.io/apiserver plugin/pkg/authenticator/token/webhook).

Configured the same way: ``--authentication-token-webhook-config-file`` (a kubeconfig whose current
context's cluster is the webhook and whose user is how the API server authenticates to it) and
``--authentication-token-webhook-cache-ttl`` (default 2m). Each unknown bearer token is POSTed as a
``TokenReview`` (``authentication.k8s.io/v1``, ``--authentication-token-webhook-version``); the
answer, accepted or refused, is cached for the TTL by a keyed hash of the token
(pkg/authentication/token/cache: success and failure TTL are both the flag, errors are not cached).
A failed call (connection error, 429, 5xx) is retried with kube's default backoff (0.5 s, factor 1.5,
5 steps) and then refuses the token. Authenticated users get ``system:authenticated`` added, as
kube-apiserver's authenticated-group adder does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import ssl
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import httpx
import yaml  # type: ignore[import-untyped]

from .auth import AUTHENTICATED, UserInfo

log = logging.getLogger(__name__)

DEFAULT_CACHE_TTL = 120.0  # kube-apiserver's --authentication-token-webhook-cache-ttl default (2m)
CACHE_ENTRIES = 4096
MAX_CONFIG_BYTES = 1 << 20
MAX_TOKEN_CHARS = 16 * 1024
BACKOFF = (0.5, 1.5, 5)  # duration, factor, steps: apiserver's DefaultAuthWebhookRetryBackoff
REQUEST_TIMEOUT = 30.0
VERSIONS = {"v1": "authentication.k8s.io/v1", "v1beta1": "authentication.k8s.io/v1beta1"}
DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


class WebhookConfigError(ValueError):
    pass


def parse_duration(text: str) -> float:
    """A Go duration (``5s``, ``2m0s``, ``500ms``) in seconds."""
    parts = DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise WebhookConfigError(f"invalid duration {text!r} (use e.g. 5s, 2m0s, 500ms)")
    return sum(float(n) * UNITS[u] for n, u in parts)


def _named(items: Any, name: str, what: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            return dict(item.get(what) or {})
    raise WebhookConfigError(f"webhook kubeconfig has no {what} named {name!r}")


class WebhookTokenAuthenticator:
    """One link of the authenticator chain (``auth.Authenticator``)."""

    def __init__(self, server: str, client: httpx.Client, cache_ttl: float = DEFAULT_CACHE_TTL,
                 version: str = "v1", backoff: tuple[float, float, int] = BACKOFF) -> None:
        self.server = server
        self.backoff = backoff
        self.client = client
        self.cache_ttl = cache_ttl
        self.api_version = VERSIONS[version]
        self._cache: OrderedDict[bytes, tuple[float, UserInfo | None]] = OrderedDict()
        self._cache_key = secrets.token_bytes(32)  # tokens are cached by HMAC, never in the clear
        self.calls = 0  # TokenReviews sent (the cache's effect is visible in tests)

    @classmethod
    def from_kubeconfig(cls, path: str | Path, cache_ttl: float = DEFAULT_CACHE_TTL,
                        version: str = "v1") -> WebhookTokenAuthenticator:
        source = Path(path)
        try:
            if source.stat().st_size > MAX_CONFIG_BYTES:
                raise WebhookConfigError(f"{source}: larger than {MAX_CONFIG_BYTES} bytes")
            config = yaml.safe_load(source.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise WebhookConfigError(f"webhook kubeconfig {str(source)!r} cannot be read: {exc}") from None
        if not isinstance(config, dict):
            raise WebhookConfigError(f"webhook kubeconfig {str(source)!r} is not a kubeconfig")
        if version not in VERSIONS:
            raise WebhookConfigError(f"webhook version must be v1 or v1beta1, got {version!r}")
        context = _named(config.get("contexts"), str(config.get("current-context", "")), "context")
        cluster = _named(config.get("clusters"), str(context.get("cluster", "")), "cluster")
        user = _named(config.get("users"), str(context.get("user", "")), "user")
        server = cluster.get("server")
        if not isinstance(server, str) or not server.startswith(("https://", "http://")):
            raise WebhookConfigError(f"webhook kubeconfig {str(source)!r}: cluster.server must be an https:// URL")
        base = source.parent
        verify: ssl.SSLContext | bool = True
        try:
            if cluster.get("insecure-skip-tls-verify"):
                verify = False
            elif cluster.get("certificate-authority-data"):
                verify = ssl.create_default_context(
                    cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
            elif cluster.get("certificate-authority"):
                verify = ssl.create_default_context(cafile=str(base / cluster["certificate-authority"]))
            if isinstance(verify, ssl.SSLContext) and user.get("client-certificate"):
                verify.load_cert_chain(str(base / user["client-certificate"]), str(base / user["client-key"]))
        except (OSError, ValueError, KeyError, ssl.SSLError) as exc:
            raise WebhookConfigError(f"webhook kubeconfig {str(source)!r}: TLS settings unusable: {exc}") from None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        token = user.get("token") or (Path(base / user["tokenFile"]).read_text().strip()
                                      if user.get("tokenFile") else None)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        client = httpx.Client(verify=verify, headers=headers, timeout=REQUEST_TIMEOUT)
        return cls(server, client, cache_ttl, version)

    def authenticate(self, token: str) -> UserInfo | None:
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        key = hmac.new(self._cache_key, token.encode(), hashlib.sha256).digest()
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            user = self._review(token)
        except (httpx.HTTPError, ValueError) as exc:  # an error: refused now, not cached
            log.warning("token webhook %s failed: %s", self.server, exc)
            return None
        if self.cache_ttl > 0:
            self._cache[key] = (now + self.cache_ttl, user)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return user

    def _review(self, token: str) -> UserInfo | None:
        body = {"apiVersion": self.api_version, "kind": "TokenReview", "metadata": {"creationTimestamp": None},
                "spec": {"token": token}, "status": {"user": {}}}
        delay, factor, steps = self.backoff
        for step in range(steps):
            self.calls += 1
            try:
                response = self.client.post(self.server, json=body)
            except httpx.TransportError:
                if step == steps - 1:
                    raise
            else:
                if response.status_code != 429 and response.status_code < 500:
                    break
                if step == steps - 1:
                    raise ValueError(f"webhook answered {response.status_code}")
            time.sleep(delay)
            delay *= factor
        if response.status_code != 200:
            raise ValueError(f"webhook answered {response.status_code}: {response.text[:200]}")
        status = response.json().get("status") or {}
        if not status.get("authenticated"):
            return None
        user = status.get("user") or {}
        groups = [str(g) for g in user.get("groups") or []]
        if AUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
        extra = {str(k): tuple(str(v) for v in values) for k, values in (user.get("extra") or {}).items()}
        return UserInfo(str(user.get("username", "")), str(user.get("uid", "")), tuple(groups), extra)
