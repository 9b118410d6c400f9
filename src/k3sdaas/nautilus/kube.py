"""Join material for workers: short-lived bootstrap tokens, created as ``k3s token create --ttl`` does.

A token is a ``bootstrap-token-<id>`` Secret in ``kube-system`` (type ``bootstrap.kubernetes.io/token``)
with an ``expiration``; the API server's token cleaner deletes it after that. The worker gets it in
K3s's full form ``K10<sha256 of the CA file>::<id>.<secret>``, so its agent checks the server's CA
before it sends the token. The same code runs against K3s in the enclave and the local stand-in.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, Unavailable

ALPHABET = string.ascii_lowercase + string.digits
K3S_NODE_GROUP = "system:bootstrappers:k3s:default-node-token"
MAX_CA_BYTES = 1 << 20


@dataclass(frozen=True)
class JoinToken:
    token: str
    token_id: str
    expires_at: dt.datetime


def _random(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


class JoinTokens:
    def __init__(self, kubeconfig: str, ca_file: str, ttl: float) -> None:
        self.kubeconfig = kubeconfig
        self.ca_file = ca_file
        self.ttl = ttl
        self._api: Any = None

    def ca_pem(self) -> str:
        path = Path(self.ca_file)
        try:
            if path.stat().st_size > MAX_CA_BYTES:
                raise InvalidInput(f"cluster CA file {self.ca_file!r} is larger than {MAX_CA_BYTES} bytes",
                                   field="cluster_ca_file")
            return path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise Unavailable(f"cluster CA file {self.ca_file!r} cannot be read: {exc.__class__.__name__}") from None

    def _core(self) -> Any:
        if self._api is None:
            from kubernetes import client

            self._api = client.CoreV1Api(api_client(self.kubeconfig))
        return self._api

    def _create(self, node_id: str) -> JoinToken:
        ca_hash = hashlib.sha256(self.ca_pem().encode("ascii")).hexdigest()
        token_id, secret = _random(6), _random(16)
        expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=self.ttl)
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system",
                         "labels": {"k3sdaas.io/node": _label(node_id)}},
            "type": "bootstrap.kubernetes.io/token",
            "stringData": {
                "token-id": token_id,
                "token-secret": secret,
                "expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "usage-bootstrap-authentication": "true",
                "usage-bootstrap-signing": "true",
                "auth-extra-groups": K3S_NODE_GROUP,
                "description": f"k3sdaas join token for node {node_id}"[:250],
            },
        }
        from kubernetes.client.exceptions import ApiException

        try:
            self._core().create_namespaced_secret("kube-system", body)
        except ApiException as exc:
            raise Unavailable(f"Kubernetes API refused the bootstrap token Secret: {exc.status} {exc.reason}") from None
        except Exception as exc:  # noqa: BLE001  (urllib3's MaxRetryError and friends are not OSErrors)
            raise Unavailable(f"Kubernetes API unreachable: {exc.__class__.__name__}") from None
        return JoinToken(f"K10{ca_hash}::{token_id}.{secret}", token_id, expires)

    async def create(self, node_id: str) -> JoinToken:
        return await asyncio.to_thread(self._create, node_id)


def api_client(kubeconfig: str) -> Any:
    """A client of the Kubernetes API the kubeconfig names (the master's own credential)."""
    from kubernetes import config  # imported on first use: the library is large

    try:
        return config.new_client_from_config(config_file=kubeconfig)
    except Exception as exc:  # noqa: BLE001  (the library raises config, file and YAML errors of many types)
        raise Unavailable(f"kubeconfig {kubeconfig!r} cannot be used: {exc.__class__.__name__}: {exc}") from None


def _label(value: str) -> str:
    """A label value: at most 63 of [A-Za-z0-9._-], alphanumeric at both ends."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "-" for c in value)[:63]
    return cleaned.strip("._-") or "node"
