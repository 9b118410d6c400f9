"""Running a node for tests: in a background thread, yielding its URL, CA path and a faucet.

Also :class:`TrustingGrpcClient`, a pysui ``GrpcProtocolClient`` that trusts the node's CA (see the
package docstring for why a subclass is the hook).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from cryptography import x509
from grpclib.client import Channel
from pysui import GroupProtocol, GrpcProtocolClient, NetworkType, PysuiConfiguration
from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_crypto import create_new_keypair

from . import tls
from .faucet import DEFAULT_AMOUNT, fund_address
from .ledger import advance_clock
from .node import NodeInfo, SuiNode


@dataclass(frozen=True)
class LocalNode:
    """A running test node."""

    info: NodeInfo
    service_log: Callable[[], list[tuple[str, str]]]

    @property
    def url(self) -> str:
        return self.info.url

    @property
    def ca_path(self) -> Path:
        return self.info.ca_path

    @property
    def state_dir(self) -> Path:
        return self.info.state_dir

    def faucet(self, address: str, amount: int = DEFAULT_AMOUNT) -> str:
        return fund_address(self.state_dir, address, amount)

    def advance_clock(self, ms: int) -> int:
        return advance_clock(self.state_dir, ms)


@contextmanager
def running_node(state_dir: Path, *, nitro_root: x509.Certificate | None = None,
                 http_faucet: bool = False) -> Iterator[LocalNode]:
    """Start a node on a free loopback port in a daemon thread (with an HTTP faucet on another free
    port when asked); stop it on exit."""
    started: concurrent.futures.Future[tuple[SuiNode, NodeInfo]] = concurrent.futures.Future()
    stop = threading.Event()

    async def main() -> None:
        node = SuiNode(Path(state_dir), nitro_root=nitro_root, faucet_port=0 if http_faucet else None)
        try:
            info = await node.start()
        except BaseException as exc:
            started.set_exception(exc)
            raise
        started.set_result((node, info))
        while not stop.is_set():  # noqa: ASYNC110  `stop` is a threading.Event set from the caller's thread
            await asyncio.sleep(0.02)
        await node.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="k3sdaas-localnet-sui", daemon=True)
    thread.start()
    node, info = started.result(timeout=30)
    try:
        yield LocalNode(info, lambda: list(node.service.rpc_log))
    finally:
        stop.set()
        thread.join(timeout=10)


class TrustingGrpcClient(GrpcProtocolClient):
    """``GrpcProtocolClient`` whose TLS channel trusts ``ca_path`` instead of certifi's bundle.

    pysui builds ``Channel(host, port, ssl=True)`` in ``__init__`` and grpclib then trusts only
    ``certifi.where()``; every request goes through ``self._channel``, so replacing that channel
    right after construction (before any call) is the whole change.
    """

    def __init__(self, *, pysui_config: PysuiConfiguration, ca_path: Path | str,
                 default_header: dict[str, str] | None = None) -> None:
        super().__init__(pysui_config=pysui_config, default_header=default_header)
        parsed = urlparse(pysui_config.active_group.active_profile.url)
        self._channel.close()
        self._channel = Channel(host=parsed.hostname, port=parsed.port, ssl=tls.client_context(ca_path))


@dataclass(frozen=True)
class Account:
    """A pysui configuration holding one fresh ed25519 key, pointed at a node."""

    address: str
    config: PysuiConfiguration
    ca_path: Path

    def client(self) -> TrustingGrpcClient:
        return TrustingGrpcClient(pysui_config=self.config, ca_path=self.ca_path)


def make_account(node: LocalNode, folder: Path) -> Account:
    """Write a pysui config for a new key into ``folder`` (created, private) with a gRPC profile for ``node``."""
    folder.mkdir(parents=True, mode=0o700)
    PysuiConfiguration.initialize_config(in_folder=folder, init_groups=[{"name": "bootstrap", "make_active": True}])
    config = PysuiConfiguration(from_cfg_path=str(folder))
    _, keypair = create_new_keypair(scheme=SignatureScheme.ED25519)
    config.new_group(
        group_name="local",
        profile_block=[{"profile_name": "local", "url": node.url, "network_type": NetworkType.LOCAL,
                        "faucet_url": None, "faucet_status_url": None, "make_active": True}],
        key_block=[{"key_string": keypair.to_bech32(), "alias": "me"}],
        active_address_index=0, group_protocol=GroupProtocol.GRPC, make_group_active=True, persist=True,
    )
    config = PysuiConfiguration(from_cfg_path=str(folder), group_name="local")
    return Account(config.active_address, config, node.ca_path)
