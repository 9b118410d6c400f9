"""The stand-in's CA, serving certificate, admin credential and kubeconfig.

The CA is made once per state directory and kept (agents pin its hash through the ``K10…`` token); the
serving certificate is reissued whenever the names it must carry change (``--host``, ``--tls-san``).
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import yaml  # type: ignore[import-untyped]

from ..pki import CA_CERT, SERVER_CERT, SERVER_KEY, ensure_ca, ensure_serving, write_private

__all__ = ["CA_CERT", "SERVER_CERT", "SERVER_KEY", "admin_token", "ensure_pki", "write_kubeconfig"]
ADMIN_TOKEN, KUBECONFIG = "admin.token", "admin.kubeconfig"
DEFAULT_SANS = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "127.0.0.1", "::1")


def ensure_pki(state: Path, names: list[str]) -> None:
    """CA (kept), serving certificate for ``names`` plus the defaults, and the admin token (kept)."""
    ensure_ca(state, "k3s-server-ca@k3sdaas-localnet")
    ensure_serving(state, "k3s", [*DEFAULT_SANS, *names])
    if not (state / ADMIN_TOKEN).exists():
        write_private(state / ADMIN_TOKEN, secrets.token_hex(32).encode())


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
    write_private(state / KUBECONFIG, yaml.safe_dump(config, sort_keys=False).encode())
    return state / KUBECONFIG
