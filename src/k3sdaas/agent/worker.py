"""The agent's work: node metrics, heartbeats with the node session, re-authentication, token expiry watch.

The master gives a *node* session only through ``register-worker`` (``/auth`` sessions name no node),
so re-authenticating is registering again: a fresh seal proof, and the master's attestation verified
again first. If it no longer matches, the agent stops heartbeating and says so; it never sends a proof
to a master it cannot attest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]
from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_crypto import create_new_keypair

from ..attestation import PcrPolicy, load_root
from ..chain import ChainClient, ChainSettings, SealToken, Signer
from ..chain.keys import signer_from_text
from ..errors import K3sdaasError
from .config import AgentConfig
from .join import JoinSpec, address_towards
from .master import AttestationMismatch, MasterLink, ensure_node_key, registry_pcrs

log = logging.getLogger("k3sdaas.agent")
KUBELET_PODS = Path("/var/lib/kubelet/pods")
RENEW_MARGIN = 30.0  # at most this many seconds before the session's expiry (a third of its life) to renew it


def chain_settings(config: AgentConfig, signer: Signer | None = None) -> ChainSettings:
    # Reads sign nothing; the client still wants a key, so a throw-away one unless the node's is given.
    signer = signer or signer_from_text(create_new_keypair(scheme=SignatureScheme.ED25519)[1].to_bech32())
    return ChainSettings(rpc_url=config.rpc_url, signer=signer, ca_file=config.ca_file, timeout=config.timeout,
                         retries=1)


def policy(config: AgentConfig) -> PcrPolicy:
    if config.expected_pcrs:
        pcrs = config.expected_pcrs
        return PcrPolicy.for_image(pcrs["pcr0"], pcrs["pcr1"], pcrs["pcr2"])
    return asyncio.run(registry_pcrs(chain_settings(config), config.package_id))


def link_for(config: AgentConfig) -> MasterLink:
    root = load_root(config.attestation_root) if config.attestation_root else None
    return MasterLink(config.master_url, root=root, policy=policy(config), timeout=config.timeout)


def spec_for(config: AgentConfig) -> JoinSpec:
    return JoinSpec(token_id=config.token_id, node_id=config.node_id, node_ip=address_towards(config.master_url),
                    config_path=Path(config.config_dir) / "config.yaml", env_path=Path(config.env_file),
                    pool=config.pool, capacity={"cpu": os.cpu_count() or 1})


def node_metrics() -> dict[str, float]:
    """The seed's worker metrics from psutil; pods from the kubelet's directory, containers from containerd's shims."""
    net = psutil.net_io_counters()
    pods = sum(1 for _ in KUBELET_PODS.iterdir()) if KUBELET_PODS.is_dir() else 0
    containers = 0
    for process in psutil.process_iter(["name"]):
        if (process.info.get("name") or "").startswith("containerd-shim"):
            containers += 1
    return {"cpu_usage": psutil.cpu_percent(interval=None), "memory_usage": psutil.virtual_memory().percent,
            "pod_count": pods, "container_count": containers, "network_rx": net.bytes_recv,
            "network_tx": net.bytes_sent, "timestamp": time.time()}


@dataclass
class Status:
    state: str = "starting"  # starting, heartbeating, master_unreachable, attestation_failed, refused
    detail: str = ""
    last_heartbeat: float | None = None
    heartbeats: int = 0
    reauthentications: int = 0
    token_seconds_left: int | None = None


class Heartbeater:
    """Heartbeats every ``heartbeat_interval`` in a thread; ``stop`` ends it."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.status = Status()
        self.stop = threading.Event()
        self.signer, _ = ensure_node_key(config.key_file, create=False)
        self._session: str | None = None
        self._session_exp = 0.0
        self._renew_at = 0.0
        self._refreshed_until_ms = 0  # the expiry our last refresh set, ahead of the master's cached view

    def reauthenticate(self, link: MasterLink) -> None:
        link.attest()  # raises AttestationMismatch before anything signed is sent
        spec = spec_for(self.config)
        material = link.register(self.signer, spec.token_id, spec.node_id, spec.node_ip, spec.capacity)
        self._session, self._session_exp = str(material["session"]), float(material["session_expires_at"])
        self._renew_at = self._session_exp - min(RENEW_MARGIN, (self._session_exp - time.time()) / 3)
        self.status.reauthentications += 1
        log.info("authenticated to %s as node %s (session until %s)", self.config.master_url, spec.node_id,
                 time.strftime("%H:%M:%S", time.gmtime(self._session_exp)))

    def beat(self, link: MasterLink) -> None:
        if self._session is None or time.time() >= self._renew_at:
            self.reauthenticate(link)
        link.call("POST", "/api/v1/nodes/heartbeat", {"metrics": node_metrics()}, session=self._session)
        self.status.heartbeats += 1
        self.status.last_heartbeat = time.time()
        self.status.state, self.status.detail = "heartbeating", ""

    def watch_token(self, link: MasterLink) -> None:
        """Refresh the token on chain before it expires when the node key owns it; warn loudly otherwise."""
        token = link.call("GET", "/api/v1/staking/status", session=self._session)["token"]
        # The master caches token reads for a moment; a refresh of ours it has not seen yet still counts.
        left = int(token["seconds_left"]) + max(0, (self._refreshed_until_ms - int(token["expires_at_ms"])) // 1000)
        self.status.token_seconds_left = left
        if left > self.config.refresh_before:
            return
        if token["owner"] != self.signer.address or not self.config.rpc_url or not self.config.package_id:
            log.warning("SEAL TOKEN %s EXPIRES IN %d s and this agent cannot refresh it (owner %s, chain %s): "
                        "refresh it with seal_token state=refreshed", self.config.token_id, left, token["owner"],
                        self.config.rpc_url or "not configured")
            return
        try:
            self._refreshed_until_ms = asyncio.run(self._refresh()).expires_at_ms
            log.info("refreshed seal token %s on chain", self.config.token_id)
        except K3sdaasError as exc:
            log.warning("SEAL TOKEN %s EXPIRES IN %d s and its refresh failed: %s", self.config.token_id, left, exc)

    async def _refresh(self) -> SealToken:
        async with ChainClient(chain_settings(self.config, self.signer)) as client:
            await client.resolve_deployment(self.config.package_id)
            return await client.refresh(self.config.token_id)

    def run(self) -> None:
        link: MasterLink | None = None
        while not self.stop.is_set():
            try:
                link = link or link_for(self.config)
                self.beat(link)
                self.watch_token(link)
            except AttestationMismatch as exc:
                self.status.state, self.status.detail = "attestation_failed", str(exc)
                log.error("stopped heartbeating: the master no longer matches its expected attestation: %s", exc)
                return
            except K3sdaasError as exc:
                self.status.state, self.status.detail = "master_unreachable", str(exc)
                self._session = None  # the next beat attests and authenticates again
                log.warning("heartbeat to %s failed: %s", self.config.master_url, exc)
            self.stop.wait(self.config.heartbeat_interval)
        if link is not None:
            link.close()

