"""Revocation follows the chain: slash, unstake and stake changes reach live sessions within 5 seconds."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from k3sdaas.chain import ChainEvent
from k3sdaas.nautilus.revocation import TokenStates
from k3sdaas.nautilus.sessions import Session, SessionInvalid

from .conftest import SUI, Chain, Master

PROMISE = 5.0  # seconds from the event to the refusal


def wait_for(check: Callable[[], bool], limit: float = PROMISE) -> float:
    """Seconds until ``check()`` held; fails after ``limit``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < limit, f"not within {limit} s"
        time.sleep(0.05)
    return time.monotonic() - start


def test_a_slash_below_tier_one_cuts_a_live_session_within_5_s(master: Master, chain: Chain) -> None:
    owner, token = chain.stake(0.5)
    session = master.login(owner, token.token_id)
    assert master.get("/api/v1/security-context", session).status_code == 200
    chain.slash(token.token_id, 2000)
    took = wait_for(lambda: master.get("/api/v1/security-context", session).status_code == 401)
    response = master.get("/api/v1/security-context", session)
    assert response.json()["error"] == "session_invalid"
    assert "slashed below tier 1" in response.json()["message"]
    print(f"slash -> refusal in {took:.2f} s")


def test_an_unstake_cuts_a_live_session(master: Master, chain: Chain) -> None:
    owner = chain.funded()
    _, token = chain.stake(1, owner=owner)
    session = master.login(owner, token.token_id)
    chain.call(owner, "unstake", token.token_id)
    wait_for(lambda: master.get("/api/v1/security-context", session).status_code == 401)
    assert "unstaked" in master.get("/api/v1/security-context", session).json()["message"]


def test_a_tier_change_applies_to_the_next_request(master: Master, chain: Chain) -> None:
    owner, token = chain.stake(5)
    session = master.login(owner, token.token_id)

    def tier() -> int:
        return int(master.get("/api/v1/security-context", session).json()["tier"])

    assert tier() == 3
    chain.slash(token.token_id, 1000)  # 4.5 SUI: developer
    wait_for(lambda: tier() == 2)
    assert master.get("/api/v1/security-context", session).json()["groups"] == ["k3sdaas:developer"]
    chain.call(chain.operator, "add_stake", token.token_id, 6 * SUI)  # 10.5 SUI: super-user
    wait_for(lambda: tier() == 4)


def test_a_partial_slash_keeps_the_session(master: Master, chain: Chain) -> None:
    owner, token = chain.stake(2)
    session = master.login(owner, token.token_id)
    chain.slash(token.token_id, 100)
    other_owner, other = chain.stake(0.5)  # an event after the slash: once seen, the slash was seen too
    other_session = master.login(other_owner, other.token_id)
    chain.slash(other.token_id, 5000)
    wait_for(lambda: master.get("/api/v1/security-context", other_session).status_code == 401)
    context = master.get("/api/v1/security-context", session)
    assert context.status_code == 200
    assert context.json()["tier"] == 1  # 1.98 SUI


def event(name: str, **fields: object) -> ChainEvent:
    return ChainEvent(f"0x2::staking::{name}", "staking", "0x1", {"token_id": TOKEN, **fields}, "digest")


TOKEN = "0x" + "12" * 32


def session(tier: int = 2) -> Session:
    return Session("0x" + "34" * 32, tier, TOKEN, int(time.time()) + 60, "jti")


def test_token_states_follow_each_event_kind() -> None:
    states = TokenStates()
    assert states.effective_tier(session(), 1) == 2  # nothing heard: the session's own tier
    assert states.apply(event("Slashed", tier=1, amount=1, penalty=1, bps=10, reason="")) is None
    assert states.effective_tier(session(), 1) == 1
    assert states.apply(event("Slashed", tier=0, amount=1, penalty=1, bps=10, reason="")) == \
        (TOKEN, "the seal token was slashed below tier 1")
    with pytest.raises(SessionInvalid, match="slashed below tier 1"):
        states.effective_tier(session(), 1)
    assert states.apply(event("StakeAdded", tier=3, amount=5, added=4)) == (TOKEN, None)  # lifted
    assert states.effective_tier(session(), 1) == 3
    with pytest.raises(SessionInvalid, match="below the required 4"):
        states.effective_tier(session(), 4)
    states.apply(event("SealRefreshed", expires_at_ms=int(time.time() * 1000) - 1))
    with pytest.raises(SessionInvalid, match="expired"):
        states.effective_tier(session(), 1)
    assert states.apply(event("Unstaked", amount=5, staker="0x1")) == (TOKEN, "the seal token was unstaked")
    with pytest.raises(SessionInvalid, match="unstaked"):
        states.effective_tier(session(), 1)
    # What the store kept across a restart refuses from the first request on.
    restarted = TokenStates({TOKEN: "the seal token was unstaked"})
    with pytest.raises(SessionInvalid, match="unstaked"):
        restarted.effective_tier(session(), 1)
