"""The master's decisions, apart from HTTP: seal admission, sessions, workers, heartbeats.

Admission (``admit``) is the same for users (``/auth``) and workers (``/register-worker``): the
signature and the challenge first (cheap, no I/O), then the nonce is consumed (single use, so a
replay fails even if it races the original), then the chain is asked about the token.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_crypto import create_new_keypair

from ..chain import ChainClient, ChainSettings, CursorStore, Deployment, ObjectNotFound, SealToken
from ..chain.abi import tier_name
from ..chain.keys import load_signer, signer_from_text
from ..errors import InvalidInput, K3sdaasError, Unavailable
from ..seal import HEADER, BadSignature, Challenge, ChallengeInvalid, kubernetes_groups, verify_challenge
from .config import NautilusConfig
from .errors import ApiError, bad_request, forbidden, unauthorized, unavailable
from .identity import Attestor, TlsFiles, new_enclave_key
from .keys import FileKeyProvider, KeyProvider, KmsKeyProvider
from .kube import JoinTokens
from .rbac import TierRbac
from .revocation import ChainFollower, TokenStates
from .sessions import Session, SessionIssuer
from .store import Node, StateStore, StoreFull

log = logging.getLogger("k3sdaas.nautilus")


@dataclass(frozen=True)
class Proof:
    """The fields of a seal proof as a client sends them."""

    token_id: str
    address: str
    nonce: str
    issued_at: int
    audience: str
    signature: str


def open_store(config: NautilusConfig) -> StateStore:
    """The state database in ``state_dir``, under a KMS data key when ``kms_key_id`` is set, else a 0600 key file."""
    state = Path(config.state_dir)
    keys: KeyProvider = KmsKeyProvider(config.kms_key_id, config.kms_region, config.kms_endpoint_url or None) \
        if config.kms_key_id else FileKeyProvider(state / "state.key")
    return StateStore(state / "state.db", keys)


def now_ms() -> int:
    return int(time.time() * 1000)


class ChainAccess:
    """One ChainClient, connected and resolved on first use, so the master starts while the chain is down."""

    def __init__(self, config: NautilusConfig) -> None:
        signer = load_signer(key_file=config.sui_key_file) if config.sui_key_file else \
            signer_from_text(create_new_keypair(scheme=SignatureScheme.ED25519)[1].to_bech32())
        self.settings = ChainSettings(rpc_url=config.rpc_url, signer=signer, ca_file=config.sui_ca_file,
                                      timeout=config.sui_timeout, retries=1, retry_delay=0.1)
        self.config = config
        self._client: ChainClient | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> ChainClient:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                client = ChainClient(self.settings)
                await client.connect()
                try:
                    # The registry (attestation, audit anchors) is always the package's; the pool may be another.
                    deployment = await client.resolve_deployment(self.config.package_id)
                    if self.config.pool_id:
                        client.deployment = dataclasses.replace(deployment, pool_id=self.config.pool_id)
                except BaseException:
                    await client.close()
                    raise
                self._client = client
            return self._client

    @property
    def deployment(self) -> Deployment | None:
        return self._client.deployment if self._client else None

    @property
    def address(self) -> str:
        """The Sui address that pays for the master's transactions (audit anchors): fund it."""
        return str(self.settings.signer.address)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class Master:
    def __init__(self, config: NautilusConfig, tls: TlsFiles) -> None:
        self.config = config
        self.tls = tls
        key, self.public_key = new_enclave_key()
        self.sessions = SessionIssuer(key, config.audience, config.session_ttl)
        self.attestor = Attestor(self.public_key, tls.spki_sha256, config.attestation_interval, config.nsm_socket)
        state = Path(config.state_dir)
        self.store = open_store(config)
        self.states = TokenStates(self.store.revocations())
        self.chain = ChainAccess(config)
        self.join_tokens = JoinTokens(config.kubeconfig, config.cluster_ca_file, config.join_token_ttl)
        self.rbac = TierRbac(config.kubeconfig, config.rbac_manifest, config.rbac_developer_label,
                             config.rbac_interval)
        self.follower: ChainFollower | None = None
        self._cursors = CursorStore(state / "chain-cursor.json")
        self._tasks: list[asyncio.Task[None]] = []
        self.chain_error: str | None = "the chain has not been read yet"  # until the follower runs

    # ----- life ------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self.attestor.refresh_forever(), name="attestation"),
                       asyncio.create_task(self._follow(), name="chain-follower")]
        if self.config.rbac_manifest:  # without one another party keeps the cluster's RBAC
            self._tasks.append(asyncio.create_task(self.rbac.keep_forever(), name="tier-rbac"))

    async def _follow(self) -> None:
        while self.follower is None:
            try:
                client = await self.chain.client()
            except K3sdaasError as exc:
                self.chain_error = str(exc)
                await asyncio.sleep(self.config.poll_interval)
                continue
            self.follower = ChainFollower(client, self.states, self._cursors, self.config.poll_interval,
                                          self._revoked)
        await self.follower.run()

    def chain_status(self) -> tuple[bool, str | None]:
        if self.follower is None:
            return False, self.chain_error
        return self.follower.available, self.follower.error

    def _revoked(self, token_id: str, reason: str | None) -> None:
        """Keep the revocations in the store, so a restart refuses the same sessions' tokens."""
        if reason is None:
            log.info("revocation of %s lifted: stake added", token_id)
            self.store.unrevoke_token(token_id)
        else:
            log.info("revoked sessions of %s: %s", token_id, reason)
            self.store.revoke_token(token_id, reason, now_ms())

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.chain.close()
        self.store.close()

    # ----- challenge and admission -----------------------------------------------------------------

    def challenge(self) -> dict[str, Any]:
        nonce, now, ttl = secrets.token_urlsafe(24), now_ms(), int(self.config.challenge_ttl * 1000)
        try:
            self.store.add_nonce(nonce, now, ttl)
        except StoreFull as exc:
            raise unavailable("too_many_challenges", str(exc)) from None
        return {"nonce": nonce, "audience": self.config.audience, "issued_at": now, "expires_at_ms": now + ttl,
                "format": HEADER}

    async def admit(self, proof: Proof) -> SealToken:
        try:
            challenge = Challenge(proof.nonce, proof.audience, proof.token_id, proof.address, proof.issued_at)
        except ChallengeInvalid as exc:
            raise bad_request(str(exc), exc.field) from None
        config = self.config
        try:
            verify_challenge(challenge, proof.signature, audience=config.audience, now_ms=now_ms(),
                             max_age_ms=int(config.challenge_ttl * 1000), max_skew_ms=int(config.max_clock_skew * 1000))
        except BadSignature as exc:
            raise unauthorized("bad_signature", str(exc)) from None
        except ChallengeInvalid as exc:
            raise unauthorized(f"challenge_{exc.reason}", str(exc), field=exc.field) from None
        if not self.store.consume_nonce(proof.nonce, now_ms()):
            raise unauthorized("nonce_invalid", "nonce is unknown, expired or already used; ask for a new challenge")
        try:
            client = await self.chain.client()
            token = await client.get_token(proof.token_id)
        except ObjectNotFound:
            raise forbidden("token_not_in_pool", f"seal token {proof.token_id} has no stake in this deployment's "
                                                 "pool") from None
        except Unavailable as exc:
            raise unavailable("chain_unavailable", f"the Sui chain cannot be read: {exc}") from None
        deployment = self.chain.deployment
        if deployment is None or token.pool_id != deployment.pool_id:
            raise forbidden("token_not_in_pool", f"seal token {proof.token_id} belongs to another pool")
        if token.owner != proof.address:
            raise forbidden("not_owner", f"seal token {proof.token_id} is owned by {token.owner}, not by the signer")
        if token.chain_time_ms >= token.expires_at_ms:
            raise forbidden("token_expired", f"seal token {proof.token_id} expired; refresh it on chain")
        if token.tier < 1:
            if token.slashed:
                raise forbidden("token_slashed", f"seal token {proof.token_id} was slashed below tier 1")
            raise forbidden("tier_too_low", f"seal token {proof.token_id} has no tier")
        if token.tier < config.min_tier:
            raise forbidden("tier_too_low", f"seal token tier {token.tier} ({token.tier_name}) is below the "
                                            f"required {config.min_tier} ({tier_name(config.min_tier)})")
        self.states.learn(token.token_id, token.tier, token.expires_at_ms)
        return token

    def _issue(self, token: SealToken, node_id: str | None = None) -> tuple[str, Session]:
        # The token's expiry is chain time; translate it to our clock by the distance from the chain's now.
        not_after = time.time() + (token.expires_at_ms - token.chain_time_ms) / 1000
        return self.sessions.issue(token.owner, token.tier, token.token_id, not_after=not_after, node_id=node_id)

    async def login(self, proof: Proof) -> dict[str, Any]:
        token = await self.admit(proof)
        jwt, session = self._issue(token)
        return {"session": jwt, "token_type": "Bearer", **self.context(session, session.tier)}

    def authenticate(self, authorization: str | None) -> tuple[Session, int]:
        """The caller's session and current tier from ``Authorization: Bearer …``, or 401."""
        if not authorization or not authorization.startswith("Bearer "):
            raise unauthorized("no_session", "send the session from /api/v1/auth as 'Authorization: Bearer <session>'")
        session = self.sessions.verify(authorization[7:].strip())
        return session, self.states.effective_tier(session, self.config.min_tier)

    @staticmethod
    def context(session: Session, tier: int) -> dict[str, Any]:
        return {"address": session.address, "username": f"sui:{session.address}", "tier": tier,
                "tier_name": tier_name(tier), "groups": kubernetes_groups(tier), "token_id": session.token_id,
                "expires_at": session.exp, "node_id": session.node_id}

    # ----- workers ---------------------------------------------------------------------------------

    async def register_worker(self, proof: Proof, node_id: str, ip: str, capacity: dict[str, Any]) -> dict[str, Any]:
        token = await self.admit(proof)
        if token.node_id != node_id:
            raise forbidden("wrong_node", f"seal token {token.token_id} is staked for node {token.node_id!r}, "
                                          f"not {node_id!r}")
        try:
            join = await self.join_tokens.create(node_id)
            ca_pem = self.join_tokens.ca_pem()
        except Unavailable as exc:
            raise unavailable("kubernetes_unavailable", str(exc)) from None
        now = now_ms()
        self.store.register_node(Node(node_id, token.token_id, token.owner, token.tier, ip, capacity, now, now))
        jwt, session = self._issue(token, node_id=node_id)
        log.info("registered node %s (token %s, %s)", node_id, token.token_id, ip)
        return {"node_id": node_id, "supervisor_url": self.config.supervisor_url, "ca_cert": ca_pem,
                "join_token": join.token, "join_token_expires_at": join.expires_at.isoformat(),
                "session": jwt, "session_expires_at": session.exp,
                "heartbeat_interval": max(1, int(self.config.heartbeat_grace // 3))}

    def heartbeat(self, session: Session, metrics: dict[str, Any]) -> dict[str, Any]:
        if session.node_id is None:
            raise forbidden("not_a_node", "heartbeats need the node session that /api/v1/register-worker returned")
        now = now_ms()
        if not self.store.heartbeat(session.node_id, now, metrics):
            raise ApiError(404, "node_unknown", f"node {session.node_id} is not registered; register it again")
        return {"node_id": session.node_id, "last_seen_ms": now, "status": "Ready"}

    def nodes(self) -> list[dict[str, Any]]:
        grace_ms, now = self.config.heartbeat_grace * 1000, now_ms()
        return [{**dataclasses.asdict(node), "status": "Ready" if now - node.last_seen_ms <= grace_ms else "NotReady"}
                for node in self.store.nodes()]

    async def staking_status(self, session: Session) -> dict[str, Any]:
        try:
            client = await self.chain.client()
            token = await client.get_token(session.token_id, max_age=2.0)
            pool = await client.pool_state()
        except ObjectNotFound:
            raise forbidden("token_not_in_pool", f"seal token {session.token_id} is no longer staked") from None
        except Unavailable as exc:
            raise unavailable("chain_unavailable", f"the Sui chain cannot be read: {exc}") from None
        return {"token": token.as_dict(), "pool": pool.as_dict()}


def parse_capacity(value: Any) -> dict[str, Any]:
    """A small mapping of numbers or short strings (cpu, memory_mb, pods, …)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 32:
        raise InvalidInput("capacity must be an object of at most 32 entries", field="capacity")
    for key, item in value.items():
        if not isinstance(key, str) or len(key) > 64:
            raise InvalidInput("capacity keys must be strings of at most 64 characters", field="capacity")
        if isinstance(item, bool) or not isinstance(item, (int, float, str)) or (isinstance(item, str) and
                                                                              len(item) > 128):
            raise InvalidInput(f"capacity[{key!r}] must be a number or a string of at most 128 characters",
                               field="capacity")
    return dict(value)
