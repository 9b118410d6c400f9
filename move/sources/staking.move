/// Stake vault for K3s-DaaS worker nodes.
///
/// Operators stake SUI into the shared `StakePool` and receive a `SealToken` for a node. The
/// pool's `records` table is the source of truth (amount, tier, expiry, slashing); the token is
/// only a capability naming its record, so the admin or the enclave can slash a node without
/// touching an object the node owns.
module k3s_daas::staking;

use sui::balance::{Self, Balance};
use sui::clock::Clock;
use sui::coin::{Self, Coin};
use sui::event;
use sui::sui::SUI;
use sui::table::{Self, Table};

// === Errors ===

const EStakeTooLow: u64 = 1;
const EInvalidNodeId: u64 = 2;
const ENodeAlreadyStaked: u64 = 3;
const ETokenNotFound: u64 = 4;
const ECooldownActive: u64 = 5;
const EInvalidBps: u64 = 6;
const EStakeBelowMinimum: u64 = 7;
const EInvalidTtl: u64 = 8;
const EZeroAmount: u64 = 9;
const EWrongPool: u64 = 10;
const EInsufficientPenalties: u64 = 11;
const EReplayedSlash: u64 = 12;

// === Constants ===

/// Minimum stake per tier, in MIST (1 SUI = 1_000_000_000 MIST).
const VIEWER_STAKE: u64 = 500_000_000;
const DEVELOPER_STAKE: u64 = 2_000_000_000;
const ADMIN_STAKE: u64 = 5_000_000_000;
const SUPER_USER_STAKE: u64 = 10_000_000_000;

const TIER_NONE: u8 = 0;
const TIER_VIEWER: u8 = 1;
const TIER_DEVELOPER: u8 = 2;
const TIER_ADMIN: u8 = 3;
const TIER_SUPER_USER: u8 = 4;

/// 30 days.
const DEFAULT_TOKEN_TTL_MS: u64 = 2_592_000_000;
const MAX_BPS: u64 = 10_000;
const MAX_NODE_ID_LENGTH: u64 = 64;

// === Objects ===

/// Authorises pool configuration, slashing and penalty withdrawal. Sent to the publisher.
public struct AdminCap has key, store {
    id: UID,
}

public struct StakePool has key {
    id: UID,
    staked: Balance<SUI>,
    /// Slashed stake, kept apart from `staked` so it is never paid back by `unstake`.
    penalties: Balance<SUI>,
    records: Table<ID, StakeRecord>,
    /// node id -> token id: a node has at most one token until it unstakes.
    nodes: Table<vector<u8>, ID>,
    token_ttl_ms: u64,
    unstake_cooldown_ms: u64,
}

public struct StakeRecord has store {
    node_id: vector<u8>,
    owner: address,
    staker: address,
    amount: u64,
    tier: u8,
    staked_at_ms: u64,
    expires_at_ms: u64,
    slashed_total: u64,
    /// Signing time of the last enclave slash applied; a signed request must be newer (no replay).
    last_enclave_slash_ms: u64,
}

/// Key only: nothing outside this module can transfer or wrap it.
public struct SealToken has key {
    id: UID,
    pool_id: ID,
    node_id: vector<u8>,
}

// === Events ===

public struct Staked has copy, drop {
    pool_id: ID,
    token_id: ID,
    node_id: vector<u8>,
    owner: address,
    staker: address,
    amount: u64,
    tier: u8,
    expires_at_ms: u64,
}

public struct SealMinted has copy, drop {
    token_id: ID,
    node_id: vector<u8>,
    owner: address,
}

public struct SealRefreshed has copy, drop {
    token_id: ID,
    expires_at_ms: u64,
}

public struct StakeAdded has copy, drop {
    token_id: ID,
    added: u64,
    amount: u64,
    tier: u8,
}

public struct Slashed has copy, drop {
    token_id: ID,
    node_id: vector<u8>,
    bps: u64,
    penalty: u64,
    amount: u64,
    tier: u8,
    reason: vector<u8>,
}

public struct Unstaked has copy, drop {
    token_id: ID,
    node_id: vector<u8>,
    staker: address,
    amount: u64,
}

public struct PoolConfigUpdated has copy, drop {
    token_ttl_ms: u64,
    unstake_cooldown_ms: u64,
}

public struct PenaltiesWithdrawn has copy, drop {
    amount: u64,
    recipient: address,
}

fun init(ctx: &mut TxContext) {
    transfer::transfer(AdminCap { id: object::new(ctx) }, ctx.sender());
    transfer::share_object(StakePool {
        id: object::new(ctx),
        staked: balance::zero(),
        penalties: balance::zero(),
        records: table::new(ctx),
        nodes: table::new(ctx),
        token_ttl_ms: DEFAULT_TOKEN_TTL_MS,
        unstake_cooldown_ms: 0,
    });
}

// === Entry functions ===

/// Stakes `payment` for `node_id` and sends a new `SealToken` to `owner` (the node's address).
public fun stake_and_mint_seal(
    pool: &mut StakePool,
    payment: Coin<SUI>,
    node_id: vector<u8>,
    owner: address,
    clock: &Clock,
    ctx: &mut TxContext,
) {
    let token = SealToken { id: object::new(ctx), pool_id: object::id(pool), node_id };
    let token_id = object::id(&token);
    pool.open_record(token_id, payment, node_id, owner, clock, ctx);
    event::emit(SealMinted { token_id, node_id, owner });
    transfer::transfer(token, owner);
}

/// Extends the token's expiry to now + `token_ttl_ms`. Only the owner can pass `&SealToken`.
public fun refresh_seal_token(pool: &mut StakePool, token: &SealToken, clock: &Clock) {
    assert!(token.pool_id == object::id(pool), EWrongPool);
    let token_id = object::id(token);
    assert!(pool.records.contains(token_id), ETokenNotFound);
    let ttl_ms = pool.token_ttl_ms;
    let record = pool.records.borrow_mut(token_id);
    assert!(record.tier > TIER_NONE, EStakeBelowMinimum);
    record.expires_at_ms = clock.timestamp_ms() + ttl_ms;
    event::emit(SealRefreshed { token_id, expires_at_ms: record.expires_at_ms });
}

/// Adds stake to a record (anyone may pay): raises the tier, and is how a slashed node recovers.
public fun add_stake(pool: &mut StakePool, token_id: ID, payment: Coin<SUI>, clock: &Clock) {
    assert!(pool.records.contains(token_id), ETokenNotFound);
    let added = payment.value();
    assert!(added > 0, EZeroAmount);
    pool.staked.join(payment.into_balance());
    let record = pool.records.borrow_mut(token_id);
    record.amount = record.amount + added;
    record.tier = tier_for_amount(record.amount);
    record.staked_at_ms = clock.timestamp_ms();
    event::emit(StakeAdded { token_id, added, amount: record.amount, tier: record.tier });
}

/// Burns the token, frees the node id and pays the remaining stake back to the staker.
public fun unstake(pool: &mut StakePool, token: SealToken, clock: &Clock, ctx: &mut TxContext) {
    assert!(token.pool_id == object::id(pool), EWrongPool);
    let token_id = object::id(&token);
    assert!(pool.records.contains(token_id), ETokenNotFound);
    let cooldown_ends_ms = pool.records.borrow(token_id).staked_at_ms + pool.unstake_cooldown_ms;
    assert!(clock.timestamp_ms() >= cooldown_ends_ms, ECooldownActive);
    let StakeRecord {
        node_id,
        owner: _,
        staker,
        amount,
        tier: _,
        staked_at_ms: _,
        expires_at_ms: _,
        slashed_total: _,
        last_enclave_slash_ms: _,
    } = pool.records.remove(token_id);
    pool.nodes.remove(node_id);
    let SealToken { id, pool_id: _, node_id: _ } = token;
    id.delete();
    // A fully slashed record has nothing left to pay; do not mint an empty coin.
    if (amount > 0) {
        transfer::public_transfer(coin::take(&mut pool.staked, amount, ctx), staker);
    };
    event::emit(Unstaked { token_id, node_id, staker, amount });
}

/// Admin slash: moves `amount * bps / 10000` of the stake into `penalties`.
public fun slash(
    pool: &mut StakePool,
    cap: &AdminCap,
    token_id: ID,
    bps: u64,
    reason: vector<u8>,
    clock: &Clock,
) {
    // The capability's type is the authorisation; the clock is part of the ABI shared with
    // `k8s_gateway::slash_by_enclave` but slashing itself does not depend on time.
    let _ = cap;
    let _ = clock;
    pool.apply_slash(token_id, bps, reason);
}

public fun set_token_ttl(pool: &mut StakePool, cap: &AdminCap, ttl_ms: u64) {
    let _ = cap;
    assert!(ttl_ms > 0, EInvalidTtl);
    pool.token_ttl_ms = ttl_ms;
    pool.emit_config_updated();
}

public fun set_unstake_cooldown(pool: &mut StakePool, cap: &AdminCap, cooldown_ms: u64) {
    let _ = cap;
    pool.unstake_cooldown_ms = cooldown_ms;
    pool.emit_config_updated();
}

#[allow(lint(self_transfer))]
public fun withdraw_penalties(
    pool: &mut StakePool,
    cap: &AdminCap,
    amount: u64,
    ctx: &mut TxContext,
) {
    let _ = cap;
    assert!(amount > 0, EZeroAmount);
    assert!(amount <= pool.penalties.value(), EInsufficientPenalties);
    let recipient = ctx.sender();
    transfer::public_transfer(coin::take(&mut pool.penalties, amount, ctx), recipient);
    event::emit(PenaltiesWithdrawn { amount, recipient });
}

// === Package functions ===

/// The body of `slash`, shared with `k8s_gateway::slash_by_enclave`.
public(package) fun apply_slash(pool: &mut StakePool, token_id: ID, bps: u64, reason: vector<u8>) {
    assert!(pool.records.contains(token_id), ETokenNotFound);
    assert!(bps >= 1 && bps <= MAX_BPS, EInvalidBps);
    let record = pool.records.borrow_mut(token_id);
    // u128 so that amount * bps cannot overflow.
    let penalty = (((record.amount as u128) * (bps as u128) / (MAX_BPS as u128)) as u64);
    record.amount = record.amount - penalty;
    record.slashed_total = record.slashed_total + penalty;
    record.tier = tier_for_amount(record.amount);
    let (node_id, amount, tier) = (record.node_id, record.amount, record.tier);
    let penalty_balance = pool.staked.split(penalty);
    pool.penalties.join(penalty_balance);
    event::emit(Slashed { token_id, node_id, bps, penalty, amount, tier, reason });
}

/// The body of `k8s_gateway::slash_by_enclave` once the signature is checked. A signed request
/// stays valid for minutes and is public once used, so each record only accepts requests signed
/// after the last one it applied.
public(package) fun apply_enclave_slash(
    pool: &mut StakePool,
    token_id: ID,
    bps: u64,
    reason: vector<u8>,
    signed_at_ms: u64,
) {
    assert!(pool.records.contains(token_id), ETokenNotFound);
    let record = pool.records.borrow_mut(token_id);
    assert!(signed_at_ms > record.last_enclave_slash_ms, EReplayedSlash);
    record.last_enclave_slash_ms = signed_at_ms;
    pool.apply_slash(token_id, bps, reason);
}

// === Read functions ===

public fun tier_for_amount(amount: u64): u8 {
    if (amount >= SUPER_USER_STAKE) TIER_SUPER_USER
    else if (amount >= ADMIN_STAKE) TIER_ADMIN
    else if (amount >= DEVELOPER_STAKE) TIER_DEVELOPER
    else if (amount >= VIEWER_STAKE) TIER_VIEWER
    else TIER_NONE
}

public fun tier(pool: &StakePool, token_id: ID): u8 {
    pool.record(token_id).tier
}

public fun stake_amount(pool: &StakePool, token_id: ID): u64 {
    pool.record(token_id).amount
}

public fun expires_at_ms(pool: &StakePool, token_id: ID): u64 {
    pool.record(token_id).expires_at_ms
}

/// A token is valid when its record exists, its tier is at least viewer and it has not expired.
public fun is_valid(pool: &StakePool, token_id: ID, clock: &Clock): bool {
    if (!pool.records.contains(token_id)) return false;
    let record = pool.records.borrow(token_id);
    record.tier > TIER_NONE && clock.timestamp_ms() < record.expires_at_ms
}

public fun token_for_node(pool: &StakePool, node_id: vector<u8>): Option<ID> {
    if (pool.nodes.contains(node_id)) option::some(*pool.nodes.borrow(node_id)) else option::none()
}

public fun token_ttl_ms(pool: &StakePool): u64 {
    pool.token_ttl_ms
}

public fun staked_total(pool: &StakePool): u64 {
    pool.staked.value()
}

public fun penalties_total(pool: &StakePool): u64 {
    pool.penalties.value()
}

public fun token_pool_id(token: &SealToken): ID {
    token.pool_id
}

public fun token_node_id(token: &SealToken): vector<u8> {
    token.node_id
}

// === Private helpers ===

/// Validates a new stake and writes its record; the caller owns the token object (if any).
fun open_record(
    pool: &mut StakePool,
    token_id: ID,
    payment: Coin<SUI>,
    node_id: vector<u8>,
    owner: address,
    clock: &Clock,
    ctx: &TxContext,
) {
    let amount = payment.value();
    assert!(amount >= VIEWER_STAKE, EStakeTooLow);
    assert!(!node_id.is_empty() && node_id.length() <= MAX_NODE_ID_LENGTH, EInvalidNodeId);
    assert!(!pool.nodes.contains(node_id), ENodeAlreadyStaked);
    let now = clock.timestamp_ms();
    let tier = tier_for_amount(amount);
    let expires_at_ms = now + pool.token_ttl_ms;
    let staker = ctx.sender();
    let record = StakeRecord {
        node_id,
        owner,
        staker,
        amount,
        tier,
        staked_at_ms: now,
        expires_at_ms,
        slashed_total: 0,
        last_enclave_slash_ms: 0,
    };
    pool.staked.join(payment.into_balance());
    pool.records.add(token_id, record);
    pool.nodes.add(node_id, token_id);
    event::emit(Staked {
        pool_id: object::id(pool),
        token_id,
        node_id,
        owner,
        staker,
        amount,
        tier,
        expires_at_ms,
    });
}

fun record(pool: &StakePool, token_id: ID): &StakeRecord {
    assert!(pool.records.contains(token_id), ETokenNotFound);
    pool.records.borrow(token_id)
}

fun emit_config_updated(pool: &StakePool) {
    event::emit(PoolConfigUpdated {
        token_ttl_ms: pool.token_ttl_ms,
        unstake_cooldown_ms: pool.unstake_cooldown_ms,
    });
}

// === Test-only helpers ===

#[test_only]
public fun init_for_testing(ctx: &mut TxContext) {
    init(ctx);
}

/// Stakes under a chosen record id without minting a token, so that tests can use signatures
/// made in advance over that id (object ids in test_scenario are not known beforehand).
#[test_only]
public fun stake_with_id_for_testing(
    pool: &mut StakePool,
    token_id: ID,
    payment: Coin<SUI>,
    node_id: vector<u8>,
    owner: address,
    clock: &Clock,
    ctx: &TxContext,
) {
    pool.open_record(token_id, payment, node_id, owner, clock, ctx);
}

/// A token with no record behind it, for the defensive `ETokenNotFound` / `EWrongPool` checks.
#[test_only]
public fun new_token_for_testing(pool_id: ID, node_id: vector<u8>, ctx: &mut TxContext): SealToken {
    SealToken { id: object::new(ctx), pool_id, node_id }
}

#[test_only]
public fun burn_token_for_testing(token: SealToken) {
    let SealToken { id, pool_id: _, node_id: _ } = token;
    id.delete();
}
