"""Following the chain: the package's staking events change what live sessions may do.

``Slashed`` and ``StakeAdded`` carry the token's new tier (tier 0 revokes), ``Unstaked`` revokes,
``SealRefreshed`` moves the expiry. ``TokenStates`` holds the latest word per token id; sessions carry
the tier they were issued with and ``TokenStates.effective_tier`` replaces it once the chain says
otherwise. ``ChainFollower`` polls the events every ``interval`` seconds and records whether the chain
answers, which is what the login path reports as the reason of its 503 during an outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..chain import ChainClient, ChainEvent, CursorStore
from ..errors import K3sdaasError
from .sessions import Session, SessionInvalid

WATCHED = ("Slashed", "Unstaked", "StakeAdded", "SealRefreshed")
log = logging.getLogger("k3sdaas.nautilus.chain")


@dataclass
class TokenState:
    tier: int | None = None
    expires_at_ms: int | None = None
    revoked: str | None = None  # why sessions of this token are refused


class TokenStates:
    def __init__(self, revocations: dict[str, str] | None = None) -> None:
        self._states: dict[str, TokenState] = {t: TokenState(revoked=r) for t, r in (revocations or {}).items()}

    def apply(self, event: ChainEvent) -> tuple[str, str | None] | None:
        """Apply one event; returns ``(token_id, reason)`` when it revokes the token or (reason None)
        lifts a revocation (stake added back above tier 0)."""
        fields = event.fields
        token_id = str(fields.get("token_id", ""))
        if not token_id:
            return None
        state = self._states.setdefault(token_id, TokenState())
        before = state.revoked
        if event.name in ("Slashed", "StakeAdded"):
            state.tier = int(fields["tier"])
            if state.tier < 1:
                state.revoked = "the seal token was slashed below tier 1"
            elif event.name == "StakeAdded":
                state.revoked = None
        elif event.name == "SealRefreshed":
            state.expires_at_ms = int(fields["expires_at_ms"])
        elif event.name == "Unstaked":
            state.revoked = "the seal token was unstaked"
        return (token_id, state.revoked) if state.revoked != before else None

    def learn(self, token_id: str, tier: int, expires_at_ms: int) -> None:
        """What a fresh chain read (at login) says; a new stake after a revocation is a new token id."""
        state = self._states.setdefault(token_id, TokenState())
        state.tier, state.expires_at_ms = tier, expires_at_ms

    def effective_tier(self, session: Session, min_tier: int) -> int:
        """The session's tier as the chain last said; refuses revoked, expired or too-low tokens."""
        state = self._states.get(session.token_id)
        if state is None:
            return session.tier
        if state.revoked:
            raise SessionInvalid(f"session refused: {state.revoked}")
        if state.expires_at_ms is not None and state.expires_at_ms <= time.time() * 1000:
            raise SessionInvalid("session refused: the seal token has expired")
        tier = session.tier if state.tier is None else state.tier
        if tier < min_tier:
            raise SessionInvalid(f"session refused: the seal token's tier {tier} is below the required {min_tier}")
        return tier


class ChainFollower:
    def __init__(self, client: ChainClient, states: TokenStates, cursors: CursorStore, interval: float,
                 on_change: Callable[[str, str | None], None]) -> None:
        self.client = client
        self.states = states
        self.cursors = cursors
        self.interval = interval
        self.on_change = on_change
        self.error: str | None = "the chain has not been read yet"
        self.last_ok = 0.0

    @property
    def available(self) -> bool:
        return self.error is None

    async def poll(self) -> int:
        """Read and apply the events since the stored cursor; returns how many."""
        cursor = self.cursors.get("staking")
        count = 0
        async for event in self.client.events(WATCHED, after=cursor):
            changed = self.states.apply(event)
            if changed:
                self.on_change(*changed)
            cursor = event.cursor or cursor
            count += 1
        if cursor:
            self.cursors.put("staking", cursor)
        return count

    async def run(self) -> None:
        while True:
            try:
                await self.poll()
            except K3sdaasError as exc:
                if self.error is None:
                    log.warning("chain unreachable: %s", exc)
                self.error = str(exc)
            except Exception as exc:  # revocation must keep following, whatever a read raises
                log.error("reading chain events failed", exc_info=exc)
                self.error = f"reading chain events failed: {exc.__class__.__name__}"
            else:
                if self.error is not None:
                    log.info("chain reachable")
                self.error, self.last_ok = None, time.time()
            await asyncio.sleep(self.interval)
