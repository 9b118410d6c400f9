"""``k3sdaas-localnet kube --state DIR [--host 127.0.0.1] [--port 6443]``: serve the Kubernetes API stand-in.

``DIR/admin.kubeconfig`` (cluster-admin, CA embedded) appears once the server accepts connections and is
removed when it stops; ``DIR/ca.pem`` is the CA clients and agents pin.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn

from . import pki, webhook
from .app import KubeApi

MAX_GRACE_SECONDS = 86400


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="k3sdaas-localnet kube",
                                     description="Kubernetes API server stand-in (HTTPS, SQLite state)")
    parser.add_argument("--state", type=Path, required=True, help="state directory (database, CA, kubeconfig)")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=6443, help="listen port (0 picks a free one; default 6443)")
    parser.add_argument("--tls-san", action="append", default=[], help="extra name or IP for the serving certificate")
    parser.add_argument("--node-grace-seconds", type=float, default=40.0,
                        help="a node without a Lease renewal for this long turns NotReady (default 40)")
    parser.add_argument("--authentication-token-webhook-config-file", dest="webhook_config", type=Path,
                        help="kubeconfig of a TokenReview webhook asked about bearer tokens (as kube-apiserver)")
    parser.add_argument("--authentication-token-webhook-cache-ttl", dest="webhook_cache_ttl", default="2m0s",
                        help="how long webhook answers are cached (Go duration; default 2m0s)")
    parser.add_argument("--authentication-token-webhook-version", dest="webhook_version", default="v1",
                        choices=sorted(webhook.VERSIONS), help="TokenReview version sent to the webhook (default v1)")
    return parser


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]"
    return host


class _Server(uvicorn.Server):
    """Calls ``on_ready`` once it accepts connections; exits 0 on SIGTERM (uvicorn would re-raise it)."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.on_ready()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        self.should_exit = True


async def _serve(args: argparse.Namespace) -> None:
    state: Path = args.state
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen()  # a port in use fails here, before the state directory is touched
    (state / pki.KUBECONFIG).unlink(missing_ok=True)
    pki.ensure_pki(state, [args.host, *args.tls_san])
    url = f"https://{_url_host(args.host)}:{sock.getsockname()[1]}"
    app = KubeApi(state, (state / pki.CA_CERT).read_bytes(), pki.admin_token(state), args.node_grace_seconds)
    if args.webhook_config:
        app.authenticators.append(webhook.WebhookTokenAuthenticator.from_kubeconfig(
            args.webhook_config, webhook.parse_duration(args.webhook_cache_ttl), args.webhook_version))
    config = uvicorn.Config(app, ssl_certfile=str(state / pki.SERVER_CERT), ssl_keyfile=str(state / pki.SERVER_KEY),
                            lifespan="on", log_level="warning", access_log=False, timeout_graceful_shutdown=2)

    def ready() -> None:
        kubeconfig = pki.write_kubeconfig(state, url)
        print(f"k3sdaas-localnet kube listening on {url}", flush=True)
        print(f"kubeconfig: {kubeconfig}", flush=True)

    server = _Server(config, ready)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, server.stop)
    try:
        await server.serve(sockets=[sock])
    finally:
        (state / pki.KUBECONFIG).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port}: must be 0..65535")
    if not 0 < args.node_grace_seconds <= MAX_GRACE_SECONDS:
        parser.error(f"--node-grace-seconds {args.node_grace_seconds}: must be in (0, {MAX_GRACE_SECONDS}]")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(args))
    except OSError as exc:
        print(f"k3sdaas-localnet kube: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except webhook.WebhookConfigError as exc:
        print(f"k3sdaas-localnet kube: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
