"""Typed results of chain operations."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .abi import tier_name


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Deployment:
    """Where the k3s_daas package and its shared objects live."""

    package_id: str
    pool_id: str
    registry_id: str
    admin_cap_id: str | None = None
    upgrade_cap_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SealToken:
    """A node's SealToken joined with its StakeRecord in the pool."""

    token_id: str
    node_id: str
    owner: str
    pool_id: str
    stake_mist: int
    tier: int
    expires_at_ms: int
    valid: bool
    slashed_total_mist: int = 0
    chain_time_ms: int = 0  # the chain's clock when this was read; expiry is judged against it

    @property
    def tier_name(self) -> str:
        return tier_name(self.tier)

    @property
    def slashed(self) -> bool:
        return self.slashed_total_mist > 0

    def seconds_left(self, at_ms: int | None = None) -> int:
        """Whole seconds until expiry (0 once expired), by default as of the chain time of the read."""
        reference = at_ms if at_ms is not None else (self.chain_time_ms or now_ms())
        return max(0, (self.expires_at_ms - reference) // 1000)

    def as_dict(self, at_ms: int | None = None) -> dict[str, Any]:
        """The shape modules return: ``id`` is the 64-hex seal token."""
        return {
            "id": self.token_id,
            "node_id": self.node_id,
            "owner": self.owner,
            "pool_id": self.pool_id,
            "stake_mist": self.stake_mist,
            "tier": self.tier,
            "tier_name": self.tier_name,
            "expires_at_ms": self.expires_at_ms,
            "seconds_left": self.seconds_left(at_ms),
            "valid": self.valid,
            "slashed": self.slashed,
            "slashed_total_mist": self.slashed_total_mist,
        }


@dataclass(frozen=True)
class PoolState:
    pool_id: str
    token_ttl_ms: int
    unstake_cooldown_ms: int
    staked_total_mist: int
    penalties_total_mist: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ChainEvent:
    """One Move event with its decoded JSON fields and the cursor to resume after it."""

    event_type: str
    module: str
    sender: str
    fields: dict[str, Any]
    tx_digest: str
    checkpoint: int | None = None
    cursor: str | None = None

    @property
    def name(self) -> str:
        return self.event_type.rsplit("::", 1)[-1]


@dataclass(frozen=True)
class TxOutcome:
    """A successful transaction: its digest, created/deleted object ids by type, and events."""

    digest: str
    created: dict[str, list[str]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    events: list[ChainEvent] = field(default_factory=list)
    gas_used_mist: int = 0

    def created_of(self, type_suffix: str) -> list[str]:
        """Ids of created objects whose type ends with ``type_suffix`` (``::staking::SealToken``)."""
        return [oid for t, ids in self.created.items() if t.endswith(type_suffix) for oid in ids]
