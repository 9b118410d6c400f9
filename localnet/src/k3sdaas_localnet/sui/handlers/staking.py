"""``k3s_daas::staking`` mirrored in Python (see move/README.md for the ABI)."""

from __future__ import annotations

from typing import Any

from ..objects import LiveObject
from .base import CallContext, MoveFunction, MoveModule, reader

MIST_PER_SUI = 1_000_000_000
# (minimum stake, tier), highest first.
TIERS = ((10 * MIST_PER_SUI, 4), (5 * MIST_PER_SUI, 3), (2 * MIST_PER_SUI, 2), (MIST_PER_SUI // 2, 1))
DEFAULT_TOKEN_TTL_MS = 2_592_000_000
MAX_NODE_ID_LEN = 64
MAX_BPS = 10_000

ABORTS = {
    "EStakeTooLow": 1,
    "EInvalidNodeId": 2,
    "ENodeAlreadyStaked": 3,
    "ETokenNotFound": 4,
    "ECooldownActive": 5,
    "EInvalidBps": 6,
    "EStakeBelowMinimum": 7,
    "EInvalidTtl": 8,
    "EZeroAmount": 9,
    "EWrongPool": 10,
    "EInsufficientPenalties": 11,
    "EReplayedSlash": 12,
}

EVENTS = {
    "Staked": (
        ("pool_id", "ID"), ("token_id", "ID"), ("node_id", "vector<u8>"), ("owner", "address"),
        ("staker", "address"), ("amount", "u64"), ("tier", "u8"), ("expires_at_ms", "u64"),
    ),
    "SealMinted": (("token_id", "ID"), ("node_id", "vector<u8>"), ("owner", "address")),
    "SealRefreshed": (("token_id", "ID"), ("expires_at_ms", "u64")),
    "StakeAdded": (("token_id", "ID"), ("added", "u64"), ("amount", "u64"), ("tier", "u8")),
    "Slashed": (
        ("token_id", "ID"), ("node_id", "vector<u8>"), ("bps", "u64"), ("penalty", "u64"),
        ("amount", "u64"), ("tier", "u8"), ("reason", "vector<u8>"),
    ),
    "Unstaked": (("token_id", "ID"), ("node_id", "vector<u8>"), ("staker", "address"), ("amount", "u64")),
    "PoolConfigUpdated": (("token_ttl_ms", "u64"), ("unstake_cooldown_ms", "u64")),
    "PenaltiesWithdrawn": (("amount", "u64"), ("recipient", "address")),
}

STRUCTS = {
    "AdminCap": (("id", "UID"),),
    "StakePool": (
        ("id", "UID"), ("staked", "Balance<SUI>"), ("penalties", "Balance<SUI>"),
        ("records", "Table<ID, StakeRecord>"), ("nodes", "Table<vector<u8>, ID>"),
        ("token_ttl_ms", "u64"), ("unstake_cooldown_ms", "u64"),
    ),
    "StakeRecord": (
        ("node_id", "vector<u8>"), ("owner", "address"), ("staker", "address"), ("amount", "u64"),
        ("tier", "u8"), ("staked_at_ms", "u64"), ("expires_at_ms", "u64"), ("slashed_total", "u64"),
        ("last_enclave_slash_ms", "u64"),
    ),
    "SealToken": (("id", "UID"), ("pool_id", "ID"), ("node_id", "vector<u8>")),
}

ABILITIES: dict[str, tuple[str, ...]] = {
    "AdminCap": ("key", "store"), "StakePool": ("key",), "StakeRecord": ("store",), "SealToken": ("key",),
}


def tier_for(amount: int) -> int:
    return next((tier for minimum, tier in TIERS if amount >= minimum), 0)


def _record(ctx: CallContext, pool: LiveObject, token_id: str, *, mutable: bool = False) -> dict[str, Any]:
    """The record or ``ETokenNotFound`` (reported in ``ctx``'s function, as each Move caller asserts itself)."""
    records = ctx.table(pool, "records")
    record = records.get(token_id)
    if record is None:
        ctx.abort("ETokenNotFound")
    return records.borrow_mut(token_id) if mutable else record


def record_of(ctx: CallContext, pool: LiveObject, token_id: str) -> dict[str, Any] | None:
    """``records[token_id]`` if present (a token of another pool has none)."""
    return ctx.within(MODULE, "record").table(pool, "records").get(token_id)


def _check_pool(ctx: CallContext, pool: LiveObject, token: LiveObject) -> None:
    if token.fields["pool_id"] != pool.id:
        ctx.abort("EWrongPool")


def _take_coin(ctx: CallContext, coin: LiveObject) -> int:
    """``coin::into_balance``: the coin object is destroyed, its value returned."""
    value: int = coin.fields["balance"]
    ctx.delete(coin)
    return value


def is_valid_record(record: dict[str, Any] | None, now_ms: int) -> bool:
    return record is not None and record["tier"] >= 1 and now_ms < record["expires_at_ms"]


def apply_slash(ctx: CallContext, pool: LiveObject, token_id: str, bps: int, reason: bytes) -> None:
    """``public(package) fun apply_slash``, the body of ``slash`` and of ``apply_enclave_slash``."""
    ctx = ctx.within(MODULE, "apply_slash")
    record = _record(ctx, pool, token_id, mutable=True)
    if not 1 <= bps <= MAX_BPS:
        ctx.abort("EInvalidBps")
    penalty = record["amount"] * bps // MAX_BPS
    pool.fields["staked"] -= penalty
    pool.fields["penalties"] += penalty
    record["amount"] -= penalty
    record["slashed_total"] += penalty
    record["tier"] = tier_for(record["amount"])
    ctx.mutated(pool)
    ctx.emit(
        "Slashed", token_id=token_id, node_id=record["node_id"], bps=bps, penalty=penalty,
        amount=record["amount"], tier=record["tier"], reason=reason,
    )


def apply_enclave_slash(ctx: CallContext, pool: LiveObject, token_id: str, bps: int, reason: bytes,
                        signed_at_ms: int) -> None:
    """``public(package) fun apply_enclave_slash``: refuses a signed request not newer than the last one."""
    inner = ctx.within(MODULE, "apply_enclave_slash")
    record = _record(inner, pool, token_id, mutable=True)
    if signed_at_ms <= record["last_enclave_slash_ms"]:
        inner.abort("EReplayedSlash")
    record["last_enclave_slash_ms"] = signed_at_ms
    apply_slash(ctx, pool, token_id, bps, reason)


def init(ctx: CallContext) -> None:
    cap = ctx.new_object("AdminCap", {})
    ctx.transfer(cap, ctx.sender)
    pool = ctx.new_object(
        "StakePool",
        {
            "staked": 0, "penalties": 0, "records": ctx.new_table(), "nodes": ctx.new_table(),
            "token_ttl_ms": DEFAULT_TOKEN_TTL_MS, "unstake_cooldown_ms": 0,
        },
    )
    ctx.share(pool)


def stake_and_mint_seal(ctx: CallContext, args: list[Any]) -> list[Any]:
    pool, payment, node_id, owner, _clock, _tx = args
    token = ctx.new_object("SealToken", {"pool_id": pool.id, "node_id": node_id})
    _open_record(ctx.at("open_record"), pool, token.id, payment, node_id, owner)
    ctx.emit("SealMinted", token_id=token.id, node_id=node_id, owner=owner)
    ctx.transfer(token, owner)
    return []


def _open_record(ctx: CallContext, pool: LiveObject, token_id: str, payment: LiveObject, node_id: bytes,
                 owner: str) -> None:
    """The private ``open_record``: validates the stake and writes the record; emits ``Staked``."""
    amount = payment.fields["balance"]
    if amount < TIERS[-1][0]:
        ctx.abort("EStakeTooLow")
    if not 0 < len(node_id) <= MAX_NODE_ID_LEN:
        ctx.abort("EInvalidNodeId")
    nodes = ctx.table(pool, "nodes")
    if node_id in nodes:
        ctx.abort("ENodeAlreadyStaked")
    tier = tier_for(amount)
    expires = ctx.now_ms + pool.fields["token_ttl_ms"]
    pool.fields["staked"] += _take_coin(ctx, payment)
    ctx.table(pool, "records").add(token_id, {
        "node_id": node_id, "owner": owner, "staker": ctx.sender, "amount": amount, "tier": tier,
        "staked_at_ms": ctx.now_ms, "expires_at_ms": expires, "slashed_total": 0, "last_enclave_slash_ms": 0,
    })
    nodes.add(node_id, token_id)
    ctx.mutated(pool)
    ctx.emit(
        "Staked", pool_id=pool.id, token_id=token_id, node_id=node_id, owner=owner, staker=ctx.sender,
        amount=amount, tier=tier, expires_at_ms=expires,
    )


def refresh_seal_token(ctx: CallContext, args: list[Any]) -> list[Any]:
    pool, token, _clock = args
    _check_pool(ctx, pool, token)
    record = _record(ctx, pool, token.id, mutable=True)
    if record["tier"] == 0:
        ctx.abort("EStakeBelowMinimum")
    record["expires_at_ms"] = ctx.now_ms + pool.fields["token_ttl_ms"]
    ctx.mutated(pool)
    ctx.emit("SealRefreshed", token_id=token.id, expires_at_ms=record["expires_at_ms"])
    return []


def add_stake(ctx: CallContext, args: list[Any]) -> list[Any]:
    pool, token_id, payment, _clock = args
    record = _record(ctx, pool, token_id, mutable=True)
    added = payment.fields["balance"]
    if added == 0:
        ctx.abort("EZeroAmount")
    pool.fields["staked"] += _take_coin(ctx, payment)
    record["amount"] += added
    record["tier"] = tier_for(record["amount"])
    record["staked_at_ms"] = ctx.now_ms
    ctx.mutated(pool)
    ctx.emit("StakeAdded", token_id=token_id, added=added, amount=record["amount"], tier=record["tier"])
    return []


def unstake(ctx: CallContext, args: list[Any]) -> list[Any]:
    pool, token, _clock, _tx = args
    _check_pool(ctx, pool, token)
    record = _record(ctx, pool, token.id)
    if ctx.now_ms < record["staked_at_ms"] + pool.fields["unstake_cooldown_ms"]:
        ctx.abort("ECooldownActive")
    ctx.table(pool, "records").remove(token.id)
    ctx.table(pool, "nodes").remove(record["node_id"])
    pool.fields["staked"] -= record["amount"]
    ctx.mutated(pool)
    ctx.delete(token)
    if record["amount"]:
        ctx.new_coin(record["amount"], record["staker"])
    ctx.emit("Unstaked", token_id=token.id, node_id=record["node_id"], staker=record["staker"], amount=record["amount"])
    return []


def slash(ctx: CallContext, args: list[Any]) -> list[Any]:
    pool, _cap, token_id, bps, reason, _clock = args
    apply_slash(ctx, pool, token_id, bps, reason)
    return []


def _config_updated(ctx: CallContext, pool: LiveObject) -> None:
    ctx.mutated(pool)
    ctx.emit(
        "PoolConfigUpdated",
        token_ttl_ms=pool.fields["token_ttl_ms"],
        unstake_cooldown_ms=pool.fields["unstake_cooldown_ms"],
    )


def set_token_ttl(ctx: CallContext, args: list[Any]) -> list[Any]:
    pool, _cap, ttl_ms = args
    if ttl_ms == 0:
        ctx.abort("EInvalidTtl")
    pool.fields["token_ttl_ms"] = ttl_ms
    _config_updated(ctx, pool)
    return []


def set_unstake_cooldown(ctx: CallContext, args: list[Any]) -> list[Any]:
    pool, _cap, cooldown_ms = args
    pool.fields["unstake_cooldown_ms"] = cooldown_ms
    _config_updated(ctx, pool)
    return []


def withdraw_penalties(ctx: CallContext, args: list[Any]) -> list[Any]:
    pool, _cap, amount, _tx = args
    if amount == 0:
        ctx.abort("EZeroAmount")
    if amount > pool.fields["penalties"]:
        ctx.abort("EInsufficientPenalties")
    pool.fields["penalties"] -= amount
    ctx.mutated(pool)
    ctx.new_coin(amount, ctx.sender)
    ctx.emit("PenaltiesWithdrawn", amount=amount, recipient=ctx.sender)
    return []


def _field_of_record(name: str) -> Any:
    """A read function over the private ``record`` helper (whose ETokenNotFound it reports)."""
    return reader(lambda ctx, pool, token_id: _record(ctx.at("record"), pool, token_id)[name])


MODULE = MoveModule(
    name="staking",
    aborts=ABORTS,
    events=EVENTS,
    structs=STRUCTS,
    abilities=ABILITIES,
    init=init,
    functions=(
        MoveFunction(
            "stake_and_mint_seal",
            ("pool: &mut StakePool", "payment: Coin<SUI>", "node_id: vector<u8>", "owner: address",
             "clock: &Clock", "ctx: &mut TxContext"),
            stake_and_mint_seal,
        ),
        MoveFunction("refresh_seal_token", ("pool: &mut StakePool", "token: &SealToken", "clock: &Clock"),
                     refresh_seal_token),
        MoveFunction("add_stake", ("pool: &mut StakePool", "token_id: ID", "payment: Coin<SUI>", "clock: &Clock"),
                     add_stake),
        MoveFunction("unstake", ("pool: &mut StakePool", "token: SealToken", "clock: &Clock", "ctx: &mut TxContext"),
                     unstake),
        MoveFunction(
            "slash",
            ("pool: &mut StakePool", "cap: &AdminCap", "token_id: ID", "bps: u64", "reason: vector<u8>",
             "clock: &Clock"),
            slash,
        ),
        MoveFunction("set_token_ttl", ("pool: &mut StakePool", "cap: &AdminCap", "ttl_ms: u64"), set_token_ttl),
        MoveFunction("set_unstake_cooldown", ("pool: &mut StakePool", "cap: &AdminCap", "cooldown_ms: u64"),
                     set_unstake_cooldown),
        MoveFunction("withdraw_penalties",
                     ("pool: &mut StakePool", "cap: &AdminCap", "amount: u64", "ctx: &mut TxContext"),
                     withdraw_penalties),
        MoveFunction("tier_for_amount", ("amount: u64",), reader(lambda ctx, amount: tier_for(amount)), ("u8",)),
        MoveFunction("tier", ("pool: &StakePool", "token_id: ID"), _field_of_record("tier"), ("u8",)),
        MoveFunction("stake_amount", ("pool: &StakePool", "token_id: ID"), _field_of_record("amount"), ("u64",)),
        MoveFunction("expires_at_ms", ("pool: &StakePool", "token_id: ID"), _field_of_record("expires_at_ms"),
                     ("u64",)),
        MoveFunction(
            "is_valid", ("pool: &StakePool", "token_id: ID", "clock: &Clock"),
            reader(lambda ctx, pool, token_id, _clock: is_valid_record(record_of(ctx, pool, token_id), ctx.now_ms)),
            ("bool",),
        ),
        MoveFunction("token_for_node", ("pool: &StakePool", "node_id: vector<u8>"),
                     reader(lambda ctx, pool, node_id: ctx.table(pool, "nodes").get(node_id)), ("Option<ID>",)),
        MoveFunction("token_ttl_ms", ("pool: &StakePool",), reader(lambda ctx, pool: pool.fields["token_ttl_ms"]),
                     ("u64",)),
        MoveFunction("staked_total", ("pool: &StakePool",), reader(lambda ctx, pool: pool.fields["staked"]),
                     ("u64",)),
        MoveFunction("penalties_total", ("pool: &StakePool",), reader(lambda ctx, pool: pool.fields["penalties"]),
                     ("u64",)),
        MoveFunction("token_pool_id", ("token: &SealToken",), reader(lambda ctx, token: token.fields["pool_id"]),
                     ("ID",)),
        MoveFunction("token_node_id", ("token: &SealToken",), reader(lambda ctx, token: token.fields["node_id"]),
                     ("vector<u8>",)),
    ),
)
