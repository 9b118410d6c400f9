#[test_only]
module k3s_daas::k8s_gateway_tests;

use k3s_daas::enclave_vectors as vectors;
use k3s_daas::k8s_gateway;
use k3s_daas::registry::{Self, EnclaveRegistry};
use k3s_daas::staking::{Self, AdminCap, SealToken, StakePool};
use k3s_daas::staking_tests;
use std::unit_test::assert_eq;
use sui::clock::{Self, Clock};
use sui::coin;
use sui::sui::SUI;
use sui::test_scenario::{Self, Scenario};

const ADMIN: address = @0xAD;
const OPERATOR: address = @0x0E;

const SUI_MIST: u64 = 1_000_000_000;
const DAY_MS: u64 = 86_400_000;
const THIRTY_DAYS_MS: u64 = 2_592_000_000;
/// A signed message may be this far (10 minutes) from the clock, either way.
const WINDOW_MS: u64 = 600_000;
const PAYLOAD_HASH: vector<u8> =
    x"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// === Helpers ===

/// Publishes the package, sets test PCRs and registers the vectors' enclave key; the clock is
/// at `now_ms`.
fun setup_at(now_ms: u64): (Scenario, Clock) {
    let mut scenario = test_scenario::begin(ADMIN);
    staking::init_for_testing(scenario.ctx());
    registry::init_for_testing(scenario.ctx());
    let mut clock = clock::create_for_testing(scenario.ctx());
    clock.set_for_testing(now_ms);

    scenario.next_tx(ADMIN);
    let mut registry = scenario.take_shared<EnclaveRegistry>();
    let cap = scenario.take_from_sender<AdminCap>();
    registry.update_pcrs(&cap, vectors::test_pcr0(), vectors::test_pcr1(), vectors::test_pcr2());
    scenario.return_to_sender(cap);
    test_scenario::return_shared(registry);

    scenario.next_tx(OPERATOR);
    let mut registry = scenario.take_shared<EnclaveRegistry>();
    registry.register_attested_for_testing(
        vectors::test_pcr0(),
        vectors::test_pcr1(),
        vectors::test_pcr2(),
        option::some(vectors::enclave_public_key()),
        now_ms,
        &clock,
        scenario.ctx(),
    );
    test_scenario::return_shared(registry);
    (scenario, clock)
}

fun setup(): (Scenario, Clock) {
    setup_at(vectors::signed_at_ms())
}

fun finish(scenario: Scenario, clock: Clock) {
    clock.destroy_for_testing();
    scenario.end();
}

/// The node submits a request with its most recent token.
fun submit(scenario: &mut Scenario, clock: &Clock, method: vector<u8>) {
    scenario.next_tx(staking_tests::node());
    let pool = scenario.take_shared<StakePool>();
    let token = scenario.take_from_sender<SealToken>();
    k8s_gateway::submit_k8s_request(
        &pool,
        &token,
        method,
        b"/api/v1/namespaces/default/pods",
        b"default",
        PAYLOAD_HASH,
        clock,
        scenario.ctx(),
    );
    scenario.return_to_sender(token);
    test_scenario::return_shared(pool);
}

fun anchor(
    scenario: &mut Scenario,
    clock: &Clock,
    merkle_root: vector<u8>,
    count: u64,
    first_seq: u64,
    last_seq: u64,
    signature: vector<u8>,
) {
    scenario.next_tx(OPERATOR);
    let registry = scenario.take_shared<EnclaveRegistry>();
    k8s_gateway::anchor_audit_batch(
        &registry,
        merkle_root,
        count,
        first_seq,
        last_seq,
        vectors::signed_at_ms(),
        signature,
        clock,
    );
    test_scenario::return_shared(registry);
}

/// Anchors the signed vector batch, with `signature` in place of its signature.
fun anchor_vector_batch(scenario: &mut Scenario, clock: &Clock, signature: vector<u8>) {
    anchor(
        scenario,
        clock,
        vectors::audit_merkle_root(),
        vectors::audit_count(),
        vectors::audit_first_seq(),
        vectors::audit_last_seq(),
        signature,
    );
}

/// Stakes `amount` under the record id the slash vectors were signed for.
fun stake_slash_target(scenario: &mut Scenario, clock: &Clock, amount: u64) {
    scenario.next_tx(OPERATOR);
    let mut pool = scenario.take_shared<StakePool>();
    let payment = coin::mint_for_testing<SUI>(amount, scenario.ctx());
    staking::stake_with_id_for_testing(
        &mut pool,
        vectors::slash_token_id(),
        payment,
        b"node-slashed",
        staking_tests::node(),
        clock,
        scenario.ctx(),
    );
    test_scenario::return_shared(pool);
}

fun enclave_slash(scenario: &mut Scenario, clock: &Clock, bps: u64, signature: vector<u8>) {
    enclave_slash_signed_at(scenario, clock, bps, vectors::signed_at_ms(), signature);
}

fun enclave_slash_signed_at(
    scenario: &mut Scenario,
    clock: &Clock,
    bps: u64,
    signed_at_ms: u64,
    signature: vector<u8>,
) {
    scenario.next_tx(OPERATOR);
    let mut pool = scenario.take_shared<StakePool>();
    let registry = scenario.take_shared<EnclaveRegistry>();
    k8s_gateway::slash_by_enclave(
        &mut pool,
        &registry,
        vectors::slash_token_id(),
        bps,
        vectors::slash_reason(),
        signed_at_ms,
        signature,
        clock,
    );
    test_scenario::return_shared(registry);
    test_scenario::return_shared(pool);
}

// === submit_k8s_request ===

#[test]
fun a_viewer_may_get_list_and_watch() {
    let (mut scenario, clock) = setup();
    staking_tests::stake(&mut scenario, &clock, b"node-1", 500_000_000);
    submit(&mut scenario, &clock, b"GET");
    let effects = scenario.next_tx(OPERATOR);
    assert_eq!(effects.num_user_events(), 1); // K8sRequestSubmitted
    submit(&mut scenario, &clock, b"LIST");
    submit(&mut scenario, &clock, b"WATCH");
    let effects = scenario.next_tx(OPERATOR);
    assert_eq!(effects.num_user_events(), 1);
    finish(scenario, clock);
}

#[test]
fun a_developer_may_write() {
    let (mut scenario, clock) = setup();
    staking_tests::stake(&mut scenario, &clock, b"node-1", 2 * SUI_MIST);
    submit(&mut scenario, &clock, b"CREATE");
    submit(&mut scenario, &clock, b"UPDATE");
    submit(&mut scenario, &clock, b"PATCH");
    submit(&mut scenario, &clock, b"DELETE");
    let effects = scenario.next_tx(OPERATOR);
    assert_eq!(effects.num_user_events(), 1);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::k8s_gateway::ETierTooLow)]
fun a_viewer_may_not_write() {
    let (mut scenario, clock) = setup();
    staking_tests::stake(&mut scenario, &clock, b"node-1", 500_000_000);
    submit(&mut scenario, &clock, b"DELETE");
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::k8s_gateway::EInvalidMethod)]
fun an_unknown_method_aborts() {
    let (mut scenario, clock) = setup();
    staking_tests::stake(&mut scenario, &clock, b"node-1", 10 * SUI_MIST);
    submit(&mut scenario, &clock, b"POST");
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::k8s_gateway::EInvalidMethod)]
fun methods_are_case_sensitive() {
    let (mut scenario, clock) = setup();
    staking_tests::stake(&mut scenario, &clock, b"node-1", 10 * SUI_MIST);
    submit(&mut scenario, &clock, b"get");
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::k8s_gateway::ETokenInvalid)]
fun an_expired_token_aborts() {
    let (mut scenario, mut clock) = setup();
    staking_tests::stake(&mut scenario, &clock, b"node-1", SUI_MIST);
    clock.increment_for_testing(THIRTY_DAYS_MS);
    submit(&mut scenario, &clock, b"GET");
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::k8s_gateway::ETokenInvalid)]
fun a_token_slashed_below_the_minimum_aborts() {
    let (mut scenario, clock) = setup();
    let token_id = staking_tests::stake(&mut scenario, &clock, b"node-1", 500_000_000);
    staking_tests::admin_slash(&mut scenario, &clock, token_id, 1000);
    submit(&mut scenario, &clock, b"GET");
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::k8s_gateway::ETokenInvalid)]
fun a_token_without_record_aborts() {
    let (mut scenario, clock) = setup();
    scenario.next_tx(OPERATOR);
    let pool = scenario.take_shared<StakePool>();
    let token = staking::new_token_for_testing(object::id(&pool), b"ghost", scenario.ctx());
    k8s_gateway::submit_k8s_request(
        &pool,
        &token,
        b"GET",
        b"/api/v1/pods",
        b"",
        PAYLOAD_HASH,
        &clock,
        scenario.ctx(),
    );
    staking::burn_token_for_testing(token);
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

// === anchor_audit_batch ===

#[test]
fun a_signed_batch_is_anchored() {
    let (mut scenario, clock) = setup();
    anchor_vector_batch(&mut scenario, &clock, vectors::audit_signature());
    let effects = scenario.next_tx(OPERATOR);
    assert_eq!(effects.num_user_events(), 1); // AuditBatchAnchored
    finish(scenario, clock);
}

#[test]
fun a_batch_signed_ten_minutes_ago_is_still_anchored() {
    let (mut scenario, clock) = setup_at(vectors::signed_at_ms() + WINDOW_MS);
    anchor_vector_batch(&mut scenario, &clock, vectors::audit_signature());
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::k8s_gateway::ETimestampOutOfWindow)]
fun a_batch_signed_over_ten_minutes_ago_aborts() {
    let (mut scenario, clock) = setup_at(vectors::signed_at_ms() + WINDOW_MS + 1);
    anchor_vector_batch(&mut scenario, &clock, vectors::audit_signature());
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::k8s_gateway::ETimestampOutOfWindow)]
fun a_batch_signed_over_ten_minutes_ahead_aborts() {
    let (mut scenario, clock) = setup_at(vectors::signed_at_ms() - WINDOW_MS - 1);
    anchor_vector_batch(&mut scenario, &clock, vectors::audit_signature());
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::k8s_gateway::EInvalidSignature)]
fun a_batch_with_a_bad_signature_aborts() {
    let (mut scenario, clock) = setup();
    let mut signature = vectors::audit_signature();
    let last = signature.pop_back();
    signature.push_back(last ^ 1);
    anchor_vector_batch(&mut scenario, &clock, signature);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::k8s_gateway::EInvalidSignature)]
fun a_batch_that_differs_from_the_signed_one_aborts() {
    let (mut scenario, clock) = setup();
    anchor(
        &mut scenario,
        &clock,
        vectors::audit_merkle_root(),
        vectors::audit_count() + 1,
        vectors::audit_first_seq(),
        vectors::audit_last_seq() + 1,
        vectors::audit_signature(),
    );
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::k8s_gateway::EInvalidSignature)]
fun a_batch_signed_by_a_revoked_enclave_aborts() {
    let (mut scenario, clock) = setup();
    // New PCRs revoke the registered key.
    scenario.next_tx(ADMIN);
    let mut registry = scenario.take_shared<EnclaveRegistry>();
    let cap = scenario.take_from_sender<AdminCap>();
    registry.update_pcrs(&cap, vectors::test_pcr2(), vectors::test_pcr1(), vectors::test_pcr0());
    scenario.return_to_sender(cap);
    test_scenario::return_shared(registry);
    anchor_vector_batch(&mut scenario, &clock, vectors::audit_signature());
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::k8s_gateway::EInvalidBatch)]
fun a_merkle_root_that_is_not_32_bytes_aborts() {
    let (mut scenario, clock) = setup();
    let mut root = vectors::audit_merkle_root();
    root.push_back(0);
    anchor(&mut scenario, &clock, root, 3, 10, 12, vectors::audit_signature());
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::k8s_gateway::EInvalidBatch)]
fun an_empty_batch_aborts() {
    let (mut scenario, clock) = setup();
    anchor(
        &mut scenario,
        &clock,
        vectors::audit_merkle_root(),
        0,
        10,
        12,
        vectors::audit_signature(),
    );
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::k8s_gateway::EInvalidBatch)]
fun a_count_that_does_not_match_the_sequence_range_aborts() {
    let (mut scenario, clock) = setup();
    anchor(
        &mut scenario,
        &clock,
        vectors::audit_merkle_root(),
        2,
        10,
        12,
        vectors::audit_signature(),
    );
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::k8s_gateway::EInvalidBatch)]
fun a_last_sequence_before_the_first_aborts() {
    let (mut scenario, clock) = setup();
    anchor(
        &mut scenario,
        &clock,
        vectors::audit_merkle_root(),
        3,
        12,
        10,
        vectors::audit_signature(),
    );
    finish(scenario, clock);
}

// === slash_by_enclave ===

#[test]
fun the_enclave_slashes_with_a_signed_request() {
    let (mut scenario, clock) = setup();
    stake_slash_target(&mut scenario, &clock, 2 * SUI_MIST);
    enclave_slash(&mut scenario, &clock, vectors::slash_bps(), vectors::slash_signature());
    let effects = scenario.next_tx(OPERATOR);
    assert_eq!(effects.num_user_events(), 1); // Slashed
    let pool = scenario.take_shared<StakePool>();
    assert_eq!(pool.stake_amount(vectors::slash_token_id()), 1_800_000_000);
    assert_eq!(pool.tier(vectors::slash_token_id()), 1);
    assert_eq!(pool.penalties_total(), 200_000_000);
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test]
fun a_later_signed_request_slashes_again() {
    let (mut scenario, clock) = setup();
    stake_slash_target(&mut scenario, &clock, 2 * SUI_MIST);
    enclave_slash(&mut scenario, &clock, vectors::slash_bps(), vectors::slash_signature());
    enclave_slash_signed_at(
        &mut scenario,
        &clock,
        vectors::slash_bps(),
        vectors::slash_later_signed_at_ms(),
        vectors::slash_later_signature(),
    );
    scenario.next_tx(OPERATOR);
    let pool = scenario.take_shared<StakePool>();
    // 2 SUI - 10 % = 1.8 SUI, - 10 % = 1.62 SUI.
    assert_eq!(pool.stake_amount(vectors::slash_token_id()), 1_620_000_000);
    assert_eq!(pool.penalties_total(), 380_000_000);
    test_scenario::return_shared(pool);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::EReplayedSlash)]
fun a_replayed_slash_request_aborts() {
    let (mut scenario, clock) = setup();
    stake_slash_target(&mut scenario, &clock, 2 * SUI_MIST);
    enclave_slash(&mut scenario, &clock, vectors::slash_bps(), vectors::slash_signature());
    enclave_slash(&mut scenario, &clock, vectors::slash_bps(), vectors::slash_signature());
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::EReplayedSlash)]
fun an_older_slash_request_after_a_newer_one_aborts() {
    let (mut scenario, clock) = setup();
    stake_slash_target(&mut scenario, &clock, 2 * SUI_MIST);
    enclave_slash_signed_at(
        &mut scenario,
        &clock,
        vectors::slash_bps(),
        vectors::slash_later_signed_at_ms(),
        vectors::slash_later_signature(),
    );
    enclave_slash(&mut scenario, &clock, vectors::slash_bps(), vectors::slash_signature());
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::k8s_gateway::ETimestampOutOfWindow)]
fun a_stale_slash_request_aborts() {
    let (mut scenario, mut clock) = setup();
    stake_slash_target(&mut scenario, &clock, 2 * SUI_MIST);
    clock.increment_for_testing(DAY_MS);
    enclave_slash(&mut scenario, &clock, vectors::slash_bps(), vectors::slash_signature());
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::k8s_gateway::EInvalidSignature)]
fun a_slash_with_other_bps_than_signed_aborts() {
    let (mut scenario, clock) = setup();
    stake_slash_target(&mut scenario, &clock, 2 * SUI_MIST);
    enclave_slash(&mut scenario, &clock, 10_000, vectors::slash_signature());
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::ETokenNotFound)]
fun a_signed_slash_of_an_unknown_token_aborts_in_staking() {
    let (mut scenario, clock) = setup();
    enclave_slash(&mut scenario, &clock, vectors::slash_bps(), vectors::slash_signature());
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::staking::EInvalidBps)]
fun a_signed_slash_of_zero_bps_aborts_in_staking() {
    let (mut scenario, clock) = setup();
    stake_slash_target(&mut scenario, &clock, 2 * SUI_MIST);
    enclave_slash(&mut scenario, &clock, 0, vectors::slash_zero_bps_signature());
    finish(scenario, clock);
}
