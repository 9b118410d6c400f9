"""Starting and stopping the node: ledger + TLS gRPC server on one asyncio loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpclib.server
import uvicorn
from cryptography import x509

from . import tls
from .faucet import faucet_app
from .ledger import Ledger, NodeConfig
from .server import SuiNodeService

CERT_DIR = "tls"


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the node's loop: the node, not uvicorn, owns SIGINT/SIGTERM."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass(frozen=True)
class NodeInfo:
    host: str
    port: int
    ca_path: Path
    state_dir: Path
    faucet_port: int | None = None

    @property
    def faucet_url(self) -> str | None:
        """Sui-style faucet endpoint (plain HTTP on loopback), when the node runs one."""
        return None if self.faucet_port is None else f"http://{self.host}:{self.faucet_port}/v2/gas"

    @property
    def url(self) -> str:
        """What goes into a pysui profile's ``url`` (pysui parses host and port from it; TLS is implied)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


class SuiNode:
    """A running node; use :meth:`start`/:meth:`stop` inside an event loop."""

    def __init__(self, state_dir: Path, *, host: str = "127.0.0.1", port: int = 0,
                 nitro_root: x509.Certificate | None = None, faucet_port: int | None = None,
                 tls_sans: Sequence[str] = ()) -> None:
        self.state_dir = Path(state_dir)
        self.host, self.port, self.faucet_port = host, port, faucet_port
        self.tls_sans = [host, *tls_sans]  # the certificate names every address clients may dial
        self.ledger = Ledger(self.state_dir, NodeConfig(nitro_root=nitro_root))
        self.service = SuiNodeService(self.ledger)
        self._server = grpclib.server.Server([self.service])
        self._faucet: uvicorn.Server | None = None
        self._faucet_task: asyncio.Task[None] | None = None

    def _bind(self, port: int) -> socket.socket:
        """Bind first so port 0 yields a known free port without a race."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets; h2 frames are small
        sock.bind((self.host, port))
        return sock

    async def start(self) -> NodeInfo:
        cert_dir = self.state_dir / CERT_DIR
        ca_path = tls.ensure_certificates(cert_dir, self.tls_sans)
        sock = self._bind(self.port)
        await self._server.start(sock=sock, ssl=tls.server_context(cert_dir))
        faucet_port = None
        if self.faucet_port is not None:
            faucet_sock = self._bind(self.faucet_port)
            faucet_sock.listen()
            config = uvicorn.Config(faucet_app(self.state_dir), lifespan="on", log_level="warning")
            self._faucet = _EmbeddedServer(config)
            self._faucet_task = asyncio.create_task(self._faucet.serve(sockets=[faucet_sock]))
            faucet_port = faucet_sock.getsockname()[1]
        return NodeInfo(self.host, sock.getsockname()[1], ca_path, self.state_dir, faucet_port)

    async def stop(self) -> None:
        if self._faucet is not None and self._faucet_task is not None:
            self._faucet.should_exit = True
            await self._faucet_task
        self._server.close()
        await self._server.wait_closed()
        self.ledger.close()

    async def serve_forever(self) -> None:
        await self._server.wait_closed()


async def run(state_dir: Path, host: str, port: int, nitro_root: x509.Certificate | None,
              faucet_port: int | None = None, started: asyncio.Future[NodeInfo] | None = None,
              tls_sans: Sequence[str] = ()) -> None:
    """Run until cancelled."""
    node = SuiNode(state_dir, host=host, port=port, nitro_root=nitro_root, faucet_port=faucet_port, tls_sans=tls_sans)
    info = await node.start()
    if started is not None:
        started.set_result(info)
    try:
        await node.serve_forever()
    finally:
        await node.stop()
