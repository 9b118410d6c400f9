#[test_only]
module k3s_daas::staking_tests;

use k3s_daas::staking::{Self, AdminCap, SealToken, StakePool};
use std::unit_test::assert_eq;
use sui::clock::{Self, Clock};
use sui::coin::{Self, Coin};
use sui::sui::SUI;
use sui::test_scenario::{Self, Scenario};

const ADMIN: address = @0xAD;
const STAKER: address = @0x5A;
const NODE: address = @0x0D;
const OTHER: address = @0x07;

const SUI_MIST: u64 = 1_000_000_000;
const START_MS: u64 = 1_700_000_000_000;
const DAY_MS: u64 = 86_400_000;
const THIRTY_DAYS_MS: u64 = 2_592_000_000;

// === Helpers ===

/// Publishes the package as ADMIN and starts a clock at START_MS.
fun setup(): (Scenario, Clock) {
    let mut scenario = test_scenario::begin(ADMIN);
    staking::init_for_testing(scenario.ctx());
    let mut clock = clock::create_for_testing(scenario.ctx());
    clock.set_for_testing(START_MS);
    (scenario, clock)
}

fun finish(scenario: Scenario, clock: Clock) {
    clock.destroy_for_testing();
    scenario.end();
}

/// The address that receives the tokens minted by `stake`.
public fun node(): address { NODE }

/// STAKER pays `amount` for `node_id`; the token goes to NODE. Returns the token's id.
/// Also used by k8s_gateway_tests.
public fun stake(scenario: &mut Scenario, clock: &Clock, node_id: vector<u8>, amount: u64): ID {
    scenario.next_tx(STAKER);
    let mut pool = scenario.take_shared<StakePool>();
    let payment = coin::mint_for_testing<SUI>(amount, scenario.ctx());
    staking::stake_and_mint_seal(&mut pool, payment, node_id, NODE, clock, scenario.ctx());
    test_scenario::return_shared(pool);
    scenario.next_tx(NODE);
    let token = scenario.take_from_sender<SealToken>();
    let token_id = object::id(&token);
    scenario.return_to_sender(token);
    token_id
}

/// Also used by k8s_gateway_tests.
public fun admin_slash(scenario: &mut Scenario, clock: &Clock, token_id: ID, bps: u64) {
    scenario.next_tx(ADMIN);
    let mut pool = scenario.take_shared<StakePool>();
    let cap = scenario.take_from_sender<AdminCap>();
    staking::slash(&mut pool, &cap, token_id, bps, b"test slash", clock);
    scenario.return_to_sender(cap);
    test_scenario::return_shared(pool);
}

fun admin_set_cooldown(scenario: &mut Scenario, cooldown_ms: u64) {
    scenario.next_tx(ADMIN);
    let mut pool = scenario.take_shared<StakePool>();
    let cap = scenario.take_from_sender<AdminCap>();
    staking::set_unstake_cooldown(&mut pool, &cap, cooldown_ms);
    scenario.return_to_sender(cap);
    test_scenario::return_shared(pool);
}

fun admin_set_ttl(scenario: &mut Scenario, ttl_ms: u64) {
    scenario.next_tx(ADMIN);
    let mut pool = scenario.take_shared<StakePool>();
    let cap = scenario.take_from_sender<AdminCap>();
    staking::set_token_ttl(&mut pool, &cap, ttl_ms);
    scenario.return_to_sender(cap);
    test_scenario::return_shared(pool);
}

fun admin_withdraw(scenario: &mut Scenario, amount: u64) {
    scenario.next_tx(ADMIN);
    let mut pool = scenario.take_shared<StakePool>();
    let cap = scenario.take_from_sender<AdminCap>();
    staking::withdraw_penalties(&mut pool, &cap, amount, scenario.ctx());
    scenario.return_to_sender(cap);
    test_scenario::return_shared(pool);
}

/// NODE unstakes its most recent token.
fun node_unstake(scenario: &mut Scenario, clock: &Clock) {
    scenario.next_tx(NODE);
    let mut pool = scenario.take_shared<StakePool>();
    let token = scenario.take_from_sender<SealToken>();
    staking::unstake(&mut pool, token, clock, scenario.ctx());
    test_scenario::return_shared(pool);
}

/// NODE refreshes its most recent token.
fun node_refresh(scenario: &mut Scenario, clock: &Clock) {
    scenario.next_tx(NODE);
    let mut pool = scenario.take_shared<StakePool>();
    let token = scenario.take_from_sender<SealToken>();
    staking::refresh_seal_token(&mut pool, &token, clock);
    scenario.return_to_sender(token);
    test_scenario::return_shared(pool);
}

fun add_stake(scenario: &mut Scenario, clock: &Clock, token_id: ID, amount: u64) {
    scenario.next_tx(OTHER);
    let mut pool = scenario.take_shared<StakePool>();
    let payment = coin::mint_for_testing<SUI>(amount, scenario.ctx());
    staking::add_stake(&mut pool, token_id, payment, clock);
    test_scenario::return_shared(pool);
}

// === stake_and_mint_seal ===

#[test]
fun stake_records_the_stake_and_sends_the_token_to_the_owner() {
    let (mut scenario, clock) = setup();
    scenario.next_tx(STAKER);
    let mut pool = scenario.take_shared<StakePool>();
    let payment = coin::mint_for_testing<SUI>(2 * SUI_MIST, scenario.ctx());
    staking::stake_and_mint_seal(&mut pool, payment, b"node-1", NODE, &clock, scenario.ctx());
    test_scenario::return_shared(pool);

    let effects = scenario.next_tx(NODE);
    assert_eq!(effects.num_user_events(), 2); // Staked, SealMinted
    let token = scenario.take_from_sender<SealToken>();
    let pool = scenario.take_shared<StakePool>();
    let token_id = object::id(&token);
    assert_eq!(pool.tier(token_id), 2);
    assert_eq!(pool.stake_amount(token_id), 2 * SUI_MIST);
    assert_eq!(pool.expires_at_ms(token_id), START_MS + THIRTY_DAYS_MS);
    assert_eq!(pool.staked_total(), 2 * SUI_MIST);
    assert_eq!(pool.penalties_total(), 0);
    assert_eq!(pool.token_ttl_ms(), THIRTY_DAYS_MS);
    assert!(pool.is_valid(token_id, &clock));
    assert_eq!(pool.token_for_node(b"node-1"), option::some(token_id));
    assert_eq!(token.token_pool_id(), object::id(&pool));
    assert_eq!(token.token_node_id(), b"node-1");
    assert!(!test_scenario::has_most_recent_for_address<SealToken>(STAKER));
    scenario.return_to_sender(token);
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test]
fun tier_for_amount_follows_the_tier_table() {
    assert_eq!(staking::tier_for_amount(0), 0);
    assert_eq!(staking::tier_for_amount(499_999_999), 0);
    assert_eq!(staking::tier_for_amount(500_000_000), 1);
    assert_eq!(staking::tier_for_amount(1_999_999_999), 1);
    assert_eq!(staking::tier_for_amount(2_000_000_000), 2);
    assert_eq!(staking::tier_for_amount(4_999_999_999), 2);
    assert_eq!(staking::tier_for_amount(5_000_000_000), 3);
    assert_eq!(staking::tier_for_amount(9_999_999_999), 3);
    assert_eq!(staking::tier_for_amount(10_000_000_000), 4);
    assert_eq!(staking::tier_for_amount(18_446_744_073_709_551_615), 4);
}

#[test]
fun each_tier_minimum_mints_a_token_of_that_tier() {
    let (mut scenario, clock) = setup();
    let viewer = stake(&mut scenario, &clock, b"viewer", 500_000_000);
    let developer = stake(&mut scenario, &clock, b"developer", 2 * SUI_MIST);
    let admin = stake(&mut scenario, &clock, b"admin", 5 * SUI_MIST);
    let super_user = stake(&mut scenario, &clock, b"super-user", 10 * SUI_MIST);
    scenario.next_tx(STAKER);
    let pool = scenario.take_shared<StakePool>();
    assert_eq!(pool.tier(viewer), 1);
    assert_eq!(pool.tier(developer), 2);
    assert_eq!(pool.tier(admin), 3);
    assert_eq!(pool.tier(super_user), 4);
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test]
fun a_node_id_of_64_bytes_is_accepted() {
    let (mut scenario, clock) = setup();
    let node_id = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let token_id = stake(&mut scenario, &clock, node_id, SUI_MIST);
    scenario.next_tx(STAKER);
    let pool = scenario.take_shared<StakePool>();
    assert_eq!(pool.token_for_node(node_id), option::some(token_id));
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::EStakeTooLow)]
fun stake_below_half_a_sui_aborts() {
    let (mut scenario, clock) = setup();
    stake(&mut scenario, &clock, b"node-1", 499_999_999);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::EInvalidNodeId)]
fun stake_with_an_empty_node_id_aborts() {
    let (mut scenario, clock) = setup();
    stake(&mut scenario, &clock, b"", SUI_MIST);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::EInvalidNodeId)]
fun stake_with_a_node_id_over_64_bytes_aborts() {
    let (mut scenario, clock) = setup();
    let node_id = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    stake(&mut scenario, &clock, node_id, SUI_MIST);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::ENodeAlreadyStaked)]
fun a_second_token_for_the_same_node_aborts() {
    let (mut scenario, clock) = setup();
    stake(&mut scenario, &clock, b"node-1", SUI_MIST);
    stake(&mut scenario, &clock, b"node-1", SUI_MIST);
    finish(scenario, clock);
}

// === refresh_seal_token ===

#[test]
fun refresh_moves_the_expiry_to_now_plus_the_ttl() {
    let (mut scenario, mut clock) = setup();
    let token_id = stake(&mut scenario, &clock, b"node-1", SUI_MIST);
    clock.increment_for_testing(10 * DAY_MS);
    node_refresh(&mut scenario, &clock);
    let effects = scenario.next_tx(NODE);
    assert_eq!(effects.num_user_events(), 1); // SealRefreshed
    let pool = scenario.take_shared<StakePool>();
    assert_eq!(pool.expires_at_ms(token_id), START_MS + 10 * DAY_MS + THIRTY_DAYS_MS);
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::EWrongPool)]
fun refresh_with_a_token_of_another_pool_aborts() {
    let (mut scenario, clock) = setup();
    scenario.next_tx(NODE);
    let mut pool = scenario.take_shared<StakePool>();
    let foreign_pool = object::id_from_address(@0xBAD);
    let token = staking::new_token_for_testing(foreign_pool, b"node-1", scenario.ctx());
    staking::refresh_seal_token(&mut pool, &token, &clock);
    staking::burn_token_for_testing(token);
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::ETokenNotFound)]
fun refresh_with_a_token_without_record_aborts() {
    let (mut scenario, clock) = setup();
    scenario.next_tx(NODE);
    let mut pool = scenario.take_shared<StakePool>();
    let token = staking::new_token_for_testing(object::id(&pool), b"ghost", scenario.ctx());
    staking::refresh_seal_token(&mut pool, &token, &clock);
    staking::burn_token_for_testing(token);
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::EStakeBelowMinimum)]
fun refresh_after_a_slash_below_the_minimum_aborts() {
    let (mut scenario, clock) = setup();
    // A viewer at exactly 0.5 SUI falls to tier 0 after a 10 % slash.
    let token_id = stake(&mut scenario, &clock, b"node-1", 500_000_000);
    admin_slash(&mut scenario, &clock, token_id, 1000);
    node_refresh(&mut scenario, &clock);
    finish(scenario, clock);
}

// === add_stake ===

#[test]
fun add_stake_raises_the_amount_and_the_tier() {
    let (mut scenario, clock) = setup();
    let token_id = stake(&mut scenario, &clock, b"node-1", SUI_MIST);
    add_stake(&mut scenario, &clock, token_id, 4 * SUI_MIST);
    let effects = scenario.next_tx(STAKER);
    assert_eq!(effects.num_user_events(), 1); // StakeAdded
    let pool = scenario.take_shared<StakePool>();
    assert_eq!(pool.stake_amount(token_id), 5 * SUI_MIST);
    assert_eq!(pool.tier(token_id), 3);
    assert_eq!(pool.staked_total(), 5 * SUI_MIST);
    // The expiry is not touched by add_stake.
    assert_eq!(pool.expires_at_ms(token_id), START_MS + THIRTY_DAYS_MS);
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test]
fun add_stake_recovers_a_node_slashed_below_the_minimum() {
    let (mut scenario, clock) = setup();
    let token_id = stake(&mut scenario, &clock, b"node-1", 500_000_000);
    admin_slash(&mut scenario, &clock, token_id, 1000);
    scenario.next_tx(STAKER);
    let pool = scenario.take_shared<StakePool>();
    assert_eq!(pool.tier(token_id), 0);
    assert!(!pool.is_valid(token_id, &clock));
    test_scenario::return_shared(pool);

    add_stake(&mut scenario, &clock, token_id, 50_000_000);
    scenario.next_tx(STAKER);
    let pool = scenario.take_shared<StakePool>();
    assert_eq!(pool.stake_amount(token_id), 500_000_000);
    assert_eq!(pool.tier(token_id), 1);
    assert!(pool.is_valid(token_id, &clock));
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::ECooldownActive)]
fun add_stake_restarts_the_unstake_cooldown() {
    let (mut scenario, mut clock) = setup();
    admin_set_cooldown(&mut scenario, DAY_MS);
    let token_id = stake(&mut scenario, &clock, b"node-1", SUI_MIST);
    clock.increment_for_testing(DAY_MS);
    add_stake(&mut scenario, &clock, token_id, SUI_MIST);
    node_unstake(&mut scenario, &clock);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::ETokenNotFound)]
fun add_stake_to_an_unknown_token_aborts() {
    let (mut scenario, clock) = setup();
    add_stake(&mut scenario, &clock, object::id_from_address(@0x404), SUI_MIST);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::EZeroAmount)]
fun add_stake_of_zero_aborts() {
    let (mut scenario, clock) = setup();
    let token_id = stake(&mut scenario, &clock, b"node-1", SUI_MIST);
    add_stake(&mut scenario, &clock, token_id, 0);
    finish(scenario, clock);
}

// === unstake ===

#[test]
fun unstake_pays_the_staker_burns_the_token_and_frees_the_node_id() {
    let (mut scenario, clock) = setup();
    let token_id = stake(&mut scenario, &clock, b"node-1", 3 * SUI_MIST);
    node_unstake(&mut scenario, &clock);

    let effects = scenario.next_tx(STAKER);
    assert_eq!(effects.num_user_events(), 1); // Unstaked
    let deleted = effects.deleted();
    assert!(deleted.contains(&token_id));
    let refund = scenario.take_from_sender<Coin<SUI>>();
    assert_eq!(refund.value(), 3 * SUI_MIST);
    coin::burn_for_testing(refund);
    assert!(!test_scenario::has_most_recent_for_address<SealToken>(NODE));
    let pool = scenario.take_shared<StakePool>();
    assert_eq!(pool.staked_total(), 0);
    assert_eq!(pool.token_for_node(b"node-1"), option::none());
    assert!(!pool.is_valid(token_id, &clock));
    test_scenario::return_shared(pool);

    // The node id can be staked again.
    let new_token_id = stake(&mut scenario, &clock, b"node-1", SUI_MIST);
    assert!(new_token_id != token_id);
    finish(scenario, clock);
}

#[test]
fun unstake_after_a_slash_pays_only_what_is_left() {
    let (mut scenario, clock) = setup();
    let token_id = stake(&mut scenario, &clock, b"node-1", 2 * SUI_MIST);
    admin_slash(&mut scenario, &clock, token_id, 1000);
    node_unstake(&mut scenario, &clock);
    scenario.next_tx(STAKER);
    let refund = scenario.take_from_sender<Coin<SUI>>();
    assert_eq!(refund.value(), 1_800_000_000);
    coin::burn_for_testing(refund);
    let pool = scenario.take_shared<StakePool>();
    assert_eq!(pool.staked_total(), 0);
    assert_eq!(pool.penalties_total(), 200_000_000);
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test]
fun unstake_of_a_fully_slashed_token_pays_nothing() {
    let (mut scenario, clock) = setup();
    let token_id = stake(&mut scenario, &clock, b"node-1", SUI_MIST);
    admin_slash(&mut scenario, &clock, token_id, 10_000);
    node_unstake(&mut scenario, &clock);
    let effects = scenario.next_tx(STAKER);
    assert_eq!(effects.num_user_events(), 1); // Unstaked, with amount 0
    assert!(!test_scenario::has_most_recent_for_address<Coin<SUI>>(STAKER));
    let pool = scenario.take_shared<StakePool>();
    assert_eq!(pool.penalties_total(), SUI_MIST);
    assert_eq!(pool.token_for_node(b"node-1"), option::none());
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test]
fun unstake_succeeds_once_the_cooldown_has_passed() {
    let (mut scenario, mut clock) = setup();
    admin_set_cooldown(&mut scenario, DAY_MS);
    stake(&mut scenario, &clock, b"node-1", SUI_MIST);
    clock.increment_for_testing(DAY_MS);
    node_unstake(&mut scenario, &clock);
    scenario.next_tx(STAKER);
    let refund = scenario.take_from_sender<Coin<SUI>>();
    assert_eq!(refund.value(), SUI_MIST);
    coin::burn_for_testing(refund);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::ECooldownActive)]
fun unstake_during_the_cooldown_aborts() {
    let (mut scenario, mut clock) = setup();
    admin_set_cooldown(&mut scenario, DAY_MS);
    stake(&mut scenario, &clock, b"node-1", SUI_MIST);
    clock.increment_for_testing(DAY_MS - 1);
    node_unstake(&mut scenario, &clock);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::EWrongPool)]
fun unstake_with_a_token_of_another_pool_aborts() {
    let (mut scenario, clock) = setup();
    scenario.next_tx(NODE);
    let mut pool = scenario.take_shared<StakePool>();
    let foreign_pool = object::id_from_address(@0xBAD);
    let token = staking::new_token_for_testing(foreign_pool, b"node-1", scenario.ctx());
    staking::unstake(&mut pool, token, &clock, scenario.ctx());
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::ETokenNotFound)]
fun unstake_with_a_token_without_record_aborts() {
    let (mut scenario, clock) = setup();
    scenario.next_tx(NODE);
    let mut pool = scenario.take_shared<StakePool>();
    let token = staking::new_token_for_testing(object::id(&pool), b"ghost", scenario.ctx());
    staking::unstake(&mut pool, token, &clock, scenario.ctx());
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

// === slash ===

#[test]
fun slash_moves_the_penalty_apart_and_recomputes_the_tier() {
    let (mut scenario, clock) = setup();
    let token_id = stake(&mut scenario, &clock, b"node-1", 2 * SUI_MIST);
    admin_slash(&mut scenario, &clock, token_id, 1000);
    let effects = scenario.next_tx(ADMIN);
    assert_eq!(effects.num_user_events(), 1); // Slashed
    let pool = scenario.take_shared<StakePool>();
    assert_eq!(pool.stake_amount(token_id), 1_800_000_000);
    assert_eq!(pool.tier(token_id), 1);
    assert_eq!(pool.staked_total(), 1_800_000_000);
    assert_eq!(pool.penalties_total(), 200_000_000);
    assert!(pool.is_valid(token_id, &clock));
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test]
fun slash_rounds_the_penalty_down() {
    let (mut scenario, clock) = setup();
    let token_id = stake(&mut scenario, &clock, b"node-1", 500_000_001);
    admin_slash(&mut scenario, &clock, token_id, 1);
    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakePool>();
    // 500_000_001 * 1 / 10_000 = 50_000.0001
    assert_eq!(pool.penalties_total(), 50_000);
    assert_eq!(pool.stake_amount(token_id), 499_950_001);
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::ETokenNotFound)]
fun slash_of_an_unknown_token_aborts() {
    let (mut scenario, clock) = setup();
    admin_slash(&mut scenario, &clock, object::id_from_address(@0x404), 1000);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::EInvalidBps)]
fun slash_of_zero_bps_aborts() {
    let (mut scenario, clock) = setup();
    let token_id = stake(&mut scenario, &clock, b"node-1", SUI_MIST);
    admin_slash(&mut scenario, &clock, token_id, 0);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::EInvalidBps)]
fun slash_above_10000_bps_aborts() {
    let (mut scenario, clock) = setup();
    let token_id = stake(&mut scenario, &clock, b"node-1", SUI_MIST);
    admin_slash(&mut scenario, &clock, token_id, 10_001);
    finish(scenario, clock);
}

// === pool configuration ===

#[test]
fun set_token_ttl_applies_to_new_stakes_and_refreshes() {
    let (mut scenario, mut clock) = setup();
    admin_set_ttl(&mut scenario, DAY_MS);
    let effects = scenario.next_tx(ADMIN);
    assert_eq!(effects.num_user_events(), 1); // PoolConfigUpdated
    let token_id = stake(&mut scenario, &clock, b"node-1", SUI_MIST);
    clock.increment_for_testing(DAY_MS / 2);
    node_refresh(&mut scenario, &clock);
    scenario.next_tx(ADMIN);
    let pool = scenario.take_shared<StakePool>();
    assert_eq!(pool.token_ttl_ms(), DAY_MS);
    assert_eq!(pool.expires_at_ms(token_id), START_MS + DAY_MS / 2 + DAY_MS);
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::EInvalidTtl)]
fun set_token_ttl_of_zero_aborts() {
    let (mut scenario, clock) = setup();
    admin_set_ttl(&mut scenario, 0);
    finish(scenario, clock);
}

#[test]
fun set_unstake_cooldown_emits_the_new_configuration() {
    let (mut scenario, clock) = setup();
    admin_set_cooldown(&mut scenario, 3 * DAY_MS);
    let effects = scenario.next_tx(ADMIN);
    assert_eq!(effects.num_user_events(), 1); // PoolConfigUpdated
    finish(scenario, clock);
}

// === withdraw_penalties ===

#[test]
fun withdraw_penalties_pays_the_admin() {
    let (mut scenario, clock) = setup();
    let token_id = stake(&mut scenario, &clock, b"node-1", 2 * SUI_MIST);
    admin_slash(&mut scenario, &clock, token_id, 1000);
    admin_withdraw(&mut scenario, 150_000_000);
    let effects = scenario.next_tx(ADMIN);
    assert_eq!(effects.num_user_events(), 1); // PenaltiesWithdrawn
    let payout = scenario.take_from_sender<Coin<SUI>>();
    assert_eq!(payout.value(), 150_000_000);
    coin::burn_for_testing(payout);
    let pool = scenario.take_shared<StakePool>();
    assert_eq!(pool.penalties_total(), 50_000_000);
    // Stake and penalties are separate balances.
    assert_eq!(pool.staked_total(), 1_800_000_000);
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::EZeroAmount)]
fun withdraw_penalties_of_zero_aborts() {
    let (mut scenario, clock) = setup();
    admin_withdraw(&mut scenario, 0);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::EInsufficientPenalties)]
fun withdraw_more_than_the_penalties_aborts() {
    let (mut scenario, clock) = setup();
    let token_id = stake(&mut scenario, &clock, b"node-1", 2 * SUI_MIST);
    admin_slash(&mut scenario, &clock, token_id, 1000);
    admin_withdraw(&mut scenario, 200_000_001);
    finish(scenario, clock);
}

// === read functions ===

#[test]
fun a_token_is_invalid_from_its_expiry_on() {
    let (mut scenario, mut clock) = setup();
    let token_id = stake(&mut scenario, &clock, b"node-1", SUI_MIST);
    scenario.next_tx(STAKER);
    let pool = scenario.take_shared<StakePool>();
    clock.increment_for_testing(THIRTY_DAYS_MS - 1);
    assert!(pool.is_valid(token_id, &clock));
    clock.increment_for_testing(1);
    assert!(!pool.is_valid(token_id, &clock));
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test]
fun unknown_tokens_and_nodes_read_as_absent() {
    let (mut scenario, clock) = setup();
    scenario.next_tx(STAKER);
    let pool = scenario.take_shared<StakePool>();
    assert!(!pool.is_valid(object::id_from_address(@0x404), &clock));
    assert_eq!(pool.token_for_node(b"node-404"), option::none());
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::ETokenNotFound)]
fun tier_of_an_unknown_token_aborts() {
    let (mut scenario, clock) = setup();
    scenario.next_tx(STAKER);
    let pool = scenario.take_shared<StakePool>();
    pool.tier(object::id_from_address(@0x404));
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::ETokenNotFound)]
fun stake_amount_of_an_unknown_token_aborts() {
    let (mut scenario, clock) = setup();
    scenario.next_tx(STAKER);
    let pool = scenario.take_shared<StakePool>();
    pool.stake_amount(object::id_from_address(@0x404));
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::ETokenNotFound)]
fun expires_at_of_an_unknown_token_aborts() {
    let (mut scenario, clock) = setup();
    scenario.next_tx(STAKER);
    let pool = scenario.take_shared<StakePool>();
    pool.expires_at_ms(object::id_from_address(@0x404));
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}
