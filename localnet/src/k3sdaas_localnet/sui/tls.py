"""Self-signed CA and server certificate for the node's TLS endpoint.

pysui's gRPC client always speaks TLS, so the stand-in serves TLS with a certificate issued by a CA it
generates once per state directory; clients trust ``ca.pem`` (see the package docstring for how).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from pathlib import Path

from ..pki import SERVER_CERT, SERVER_KEY, ensure_ca, ensure_serving

DEFAULT_SANS = ("localhost", "127.0.0.1", "::1")


def ensure_certificates(directory: Path, names: Iterable[str] = ()) -> Path:
    """The CA (kept) and a serving certificate for the defaults and ``names`` (reissued when they change);
    returns the CA path."""
    ca_path = ensure_ca(directory, "k3sdaas localnet CA")
    ensure_serving(directory, "localhost", [*DEFAULT_SANS, *names], with_ca=True)
    return ca_path


def server_context(directory: Path) -> ssl.SSLContext:
    """TLS context for the gRPC server (HTTP/2 via ALPN, as grpclib clients require), after ensure_certificates."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(directory / SERVER_CERT, directory / SERVER_KEY)
    ctx.set_alpn_protocols(["h2"])
    return ctx


def client_context(ca_path: Path | str) -> ssl.SSLContext:
    """TLS context trusting only ``ca_path``, with the settings grpclib's default context uses."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_path))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2"])
    return ctx
