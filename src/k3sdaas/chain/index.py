"""The pool's history, replayed from the package's own ``staking`` events.

Every change to a ``StakeRecord`` emits an event carrying the resulting values (``Staked``,
``StakeAdded``, ``SealRefreshed``, ``Slashed``, ``Unstaked``). Replaying them in order gives what the
chain's state no longer holds (the reasons a token was slashed for, the nodes that were unstaked)
and lets a follower see each change. The current state of a token is read directly instead (see
:mod:`.pool`): a replay costs O(events), a look-up one ``GetObject``. The index remembers its cursor.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from .models import ChainEvent


@dataclass
class StakeRecord:
    token_id: str
    node_id: bytes
    owner: str
    staker: str
    amount: int
    tier: int
    expires_at_ms: int
    slashed_total: int = 0
    slash_reasons: list[bytes] = field(default_factory=list)


@dataclass
class PoolIndex:
    """Records by token id, live tokens by node id, and node ids that were unstaked."""

    pool_id: str
    cursor: str | None = None
    records: dict[str, StakeRecord] = field(default_factory=dict)
    nodes: dict[bytes, str] = field(default_factory=dict)
    retired_nodes: set[bytes] = field(default_factory=set)
    seen_digests: set[str] = field(default_factory=set)

    def apply(self, event: ChainEvent) -> None:
        """Apply one ``staking`` event (events of other pools are ignored)."""
        f = event.fields
        token_id = f.get("token_id", "")
        record = self.records.get(token_id)
        if event.name == "Staked":
            if f["pool_id"] != self.pool_id:
                return
            node_id = _bytes(f["node_id"])
            self.records[token_id] = StakeRecord(
                token_id, node_id, f["owner"], f["staker"], int(f["amount"]), int(f["tier"]), int(f["expires_at_ms"])
            )
            self.nodes[node_id] = token_id
            self.retired_nodes.discard(node_id)
        elif record is None:
            return  # a token of another pool
        elif event.name == "StakeAdded":
            record.amount, record.tier = int(f["amount"]), int(f["tier"])
        elif event.name == "SealRefreshed":
            record.expires_at_ms = int(f["expires_at_ms"])
        elif event.name == "Slashed":
            record.amount, record.tier = int(f["amount"]), int(f["tier"])
            record.slashed_total += int(f["penalty"])
            record.slash_reasons.append(_bytes(f["reason"]))
        elif event.name == "Unstaked":
            del self.records[token_id]
            self.nodes.pop(record.node_id, None)
            self.retired_nodes.add(record.node_id)
        if event.tx_digest:
            self.seen_digests.add(event.tx_digest)


def _bytes(value: object) -> bytes:
    """``vector<u8>`` event fields are base64 in Sui JSON."""
    return bytes(value) if isinstance(value, list) else base64.b64decode(str(value))
