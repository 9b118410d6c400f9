#[test_only]
module k3s_daas::registry_tests;

use k3s_daas::attestation_documents as documents;
use k3s_daas::enclave_vectors as vectors;
use k3s_daas::registry::{Self, EnclaveRegistry};
use k3s_daas::staking::{Self, AdminCap};
use std::unit_test::assert_eq;
use sui::clock::{Self, Clock};
use sui::nitro_attestation;
use sui::test_scenario::{Self, Scenario};

const ADMIN: address = @0xAD;
const OPERATOR: address = @0x0E;

/// 10 minutes, the oldest attestation register_enclave accepts.
const MAX_ATTESTATION_AGE_MS: u64 = 600_000;

// === Helpers ===

/// Publishes the package as ADMIN; the clock is at the vectors' signing time.
fun setup(): (Scenario, Clock) {
    let mut scenario = test_scenario::begin(ADMIN);
    staking::init_for_testing(scenario.ctx());
    registry::init_for_testing(scenario.ctx());
    let mut clock = clock::create_for_testing(scenario.ctx());
    clock.set_for_testing(vectors::signed_at_ms());
    (scenario, clock)
}

fun finish(scenario: Scenario, clock: Clock) {
    clock.destroy_for_testing();
    scenario.end();
}

fun set_pcrs(scenario: &mut Scenario, pcr0: vector<u8>, pcr1: vector<u8>, pcr2: vector<u8>) {
    scenario.next_tx(ADMIN);
    let mut registry = scenario.take_shared<EnclaveRegistry>();
    let cap = scenario.take_from_sender<AdminCap>();
    registry.update_pcrs(&cap, pcr0, pcr1, pcr2);
    scenario.return_to_sender(cap);
    test_scenario::return_shared(registry);
}

fun set_test_pcrs(scenario: &mut Scenario) {
    set_pcrs(scenario, vectors::test_pcr0(), vectors::test_pcr1(), vectors::test_pcr2());
}

/// Registers through the test-only path, as if an attestation with the test PCRs carried the key.
fun register_key(
    scenario: &mut Scenario,
    clock: &Clock,
    public_key: Option<vector<u8>>,
    attested_at_ms: u64,
) {
    register_with_pcrs(
        scenario,
        clock,
        vectors::test_pcr0(),
        vectors::test_pcr1(),
        vectors::test_pcr2(),
        public_key,
        attested_at_ms,
    );
}

fun register_with_pcrs(
    scenario: &mut Scenario,
    clock: &Clock,
    pcr0: vector<u8>,
    pcr1: vector<u8>,
    pcr2: vector<u8>,
    public_key: Option<vector<u8>>,
    attested_at_ms: u64,
) {
    scenario.next_tx(OPERATOR);
    let mut registry = scenario.take_shared<EnclaveRegistry>();
    registry.register_attested_for_testing(
        pcr0,
        pcr1,
        pcr2,
        public_key,
        attested_at_ms,
        clock,
        scenario.ctx(),
    );
    test_scenario::return_shared(registry);
}

/// The production path: load_nitro_attestation on real document bytes, then register_enclave,
/// with the clock at `at_ms` (inside the document's certificate validity).
fun register_document(scenario: &mut Scenario, document: vector<u8>, at_ms: u64) {
    scenario.next_tx(OPERATOR);
    let mut clock = clock::create_for_testing(scenario.ctx());
    clock.set_for_testing(at_ms);
    let mut registry = scenario.take_shared<EnclaveRegistry>();
    let attestation = nitro_attestation::load_nitro_attestation(document, &clock);
    registry.register_enclave(attestation, &clock, scenario.ctx());
    test_scenario::return_shared(registry);
    clock.destroy_for_testing();
}

fun verify_ping(
    registry: &EnclaveRegistry,
    intent: u8,
    timestamp_ms: u64,
    payload: vector<u8>,
): bool {
    let signature = vectors::ping_signature();
    registry.verify_enclave_signature(intent, timestamp_ms, payload, &signature)
}

// === init and update_pcrs ===

#[test]
fun a_new_registry_has_no_pcrs_and_no_enclave() {
    let (mut scenario, clock) = setup();
    scenario.next_tx(ADMIN);
    let registry = scenario.take_shared<EnclaveRegistry>();
    assert_eq!(registry.pcr_version(), 0);
    let (pcr0, pcr1, pcr2) = registry.pcrs();
    assert!(pcr0.is_empty() && pcr1.is_empty() && pcr2.is_empty());
    assert_eq!(registry.enclave_pk(), vector[]);
    assert!(!registry.has_current_enclave());
    test_scenario::return_shared(registry);
    finish(scenario, clock);
}

#[test]
fun update_pcrs_stores_them_and_bumps_the_version() {
    let (mut scenario, clock) = setup();
    set_test_pcrs(&mut scenario);
    let effects = scenario.next_tx(ADMIN);
    assert_eq!(effects.num_user_events(), 1); // PcrsUpdated
    set_pcrs(
        &mut scenario,
        documents::valid_pcr0(),
        documents::valid_pcr1(),
        documents::valid_pcr2(),
    );
    scenario.next_tx(ADMIN);
    let registry = scenario.take_shared<EnclaveRegistry>();
    assert_eq!(registry.pcr_version(), 2);
    let (pcr0, pcr1, pcr2) = registry.pcrs();
    assert_eq!(pcr0, documents::valid_pcr0());
    assert_eq!(pcr1, documents::valid_pcr1());
    assert_eq!(pcr2, documents::valid_pcr2());
    test_scenario::return_shared(registry);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::registry::EInvalidPcrLength)]
fun update_pcrs_with_a_short_pcr_aborts() {
    let (mut scenario, clock) = setup();
    let mut short = vectors::test_pcr1();
    short.pop_back();
    set_pcrs(&mut scenario, vectors::test_pcr0(), short, vectors::test_pcr2());
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::registry::EDebugPcrs)]
fun update_pcrs_with_an_all_zero_pcr_aborts() {
    let (mut scenario, clock) = setup();
    let zero =
        x"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";
    set_pcrs(&mut scenario, vectors::test_pcr0(), vectors::test_pcr1(), zero);
    finish(scenario, clock);
}

#[test]
fun update_pcrs_revokes_the_registered_key() {
    let (mut scenario, clock) = setup();
    set_test_pcrs(&mut scenario);
    register_key(
        &mut scenario,
        &clock,
        option::some(vectors::enclave_public_key()),
        clock.timestamp_ms(),
    );
    set_test_pcrs(&mut scenario);
    scenario.next_tx(OPERATOR);
    let registry = scenario.take_shared<EnclaveRegistry>();
    assert!(!registry.has_current_enclave());
    assert_eq!(registry.enclave_pk(), vector[]);
    let payload = vectors::ping_payload();
    assert!(!verify_ping(&registry, vectors::ping_intent(), vectors::signed_at_ms(), payload));
    test_scenario::return_shared(registry);
    finish(scenario, clock);
}

// === register_enclave with real AWS documents ===

#[test, expected_failure(abort_code = k3s_daas::registry::ENoPcrsConfigured)]
fun register_before_any_pcrs_are_set_aborts() {
    let (mut scenario, clock) = setup();
    register_document(&mut scenario, documents::valid_document(), documents::valid_timestamp_ms());
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::registry::EInvalidPublicKey)]
fun register_a_real_document_without_a_key_aborts_after_the_pcr_check() {
    // The document's PCR0/1/2 (looked up by index among PCR0-15) match, so the check that
    // fails is the next one: this production document carries no public key.
    let (mut scenario, clock) = setup();
    set_pcrs(
        &mut scenario,
        documents::valid_pcr0(),
        documents::valid_pcr1(),
        documents::valid_pcr2(),
    );
    register_document(&mut scenario, documents::valid_document(), documents::valid_timestamp_ms());
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::registry::EPcrMismatch)]
fun register_a_real_document_with_other_pcrs_aborts() {
    let (mut scenario, clock) = setup();
    set_pcrs(
        &mut scenario,
        vectors::test_pcr0(),
        documents::valid_pcr1(),
        documents::valid_pcr2(),
    );
    register_document(&mut scenario, documents::valid_document(), documents::valid_timestamp_ms());
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::registry::EDebugPcrs)]
fun register_a_real_debug_mode_document_aborts() {
    let (mut scenario, clock) = setup();
    set_test_pcrs(&mut scenario);
    register_document(&mut scenario, documents::debug_document(), documents::debug_timestamp_ms());
    finish(scenario, clock);
}

// === register_enclave checks, through the test-only registration path ===

#[test]
fun register_stores_the_key_under_the_current_pcr_version() {
    let (mut scenario, clock) = setup();
    set_test_pcrs(&mut scenario);
    // The oldest attestation still accepted.
    let attested_at_ms = clock.timestamp_ms() - MAX_ATTESTATION_AGE_MS;
    register_key(
        &mut scenario,
        &clock,
        option::some(vectors::enclave_public_key()),
        attested_at_ms,
    );
    let effects = scenario.next_tx(OPERATOR);
    assert_eq!(effects.num_user_events(), 1); // EnclaveRegistered
    let registry = scenario.take_shared<EnclaveRegistry>();
    assert!(registry.has_current_enclave());
    assert_eq!(registry.enclave_pk(), vectors::enclave_public_key());
    assert_eq!(registry.pcr_version(), 1);
    test_scenario::return_shared(registry);
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::registry::EStaleAttestation)]
fun register_with_an_attestation_over_ten_minutes_old_aborts() {
    let (mut scenario, clock) = setup();
    set_test_pcrs(&mut scenario);
    let attested_at_ms = clock.timestamp_ms() - MAX_ATTESTATION_AGE_MS - 1;
    register_key(
        &mut scenario,
        &clock,
        option::some(vectors::enclave_public_key()),
        attested_at_ms,
    );
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::registry::EInvalidPublicKey)]
fun register_with_a_key_that_is_not_32_bytes_aborts() {
    let (mut scenario, clock) = setup();
    set_test_pcrs(&mut scenario);
    let mut long_key = vectors::enclave_public_key();
    long_key.push_back(0);
    register_key(&mut scenario, &clock, option::some(long_key), clock.timestamp_ms());
    finish(scenario, clock);
}

#[test, expected_failure(abort_code = k3s_daas::registry::EPcrMismatch)]
fun register_with_a_missing_pcr_aborts() {
    let (mut scenario, clock) = setup();
    set_test_pcrs(&mut scenario);
    register_with_pcrs(
        &mut scenario,
        &clock,
        vectors::test_pcr0(),
        vectors::test_pcr1(),
        vector[],
        option::some(vectors::enclave_public_key()),
        clock.timestamp_ms(),
    );
    finish(scenario, clock);
}

// === verify_enclave_signature ===

#[test]
fun verify_accepts_exactly_the_signed_message() {
    let (mut scenario, clock) = setup();
    set_test_pcrs(&mut scenario);
    register_key(
        &mut scenario,
        &clock,
        option::some(vectors::enclave_public_key()),
        clock.timestamp_ms(),
    );
    scenario.next_tx(OPERATOR);
    let registry = scenario.take_shared<EnclaveRegistry>();
    let intent = vectors::ping_intent();
    let at_ms = vectors::signed_at_ms();
    let payload = vectors::ping_payload();
    assert!(verify_ping(&registry, intent, at_ms, payload));
    assert!(!verify_ping(&registry, intent + 1, at_ms, payload));
    assert!(!verify_ping(&registry, intent, at_ms + 1, payload));
    assert!(!verify_ping(&registry, intent, at_ms, b"k3s-daas registry tesT"));
    let mut tampered = vectors::ping_signature();
    let last = tampered.pop_back();
    tampered.push_back(last ^ 1);
    assert!(!registry.verify_enclave_signature(intent, at_ms, payload, &tampered));
    test_scenario::return_shared(registry);
    finish(scenario, clock);
}

#[test]
fun verify_is_false_while_no_enclave_is_registered() {
    let (mut scenario, clock) = setup();
    set_test_pcrs(&mut scenario);
    scenario.next_tx(OPERATOR);
    let registry = scenario.take_shared<EnclaveRegistry>();
    let payload = vectors::ping_payload();
    assert!(!verify_ping(&registry, vectors::ping_intent(), vectors::signed_at_ms(), payload));
    test_scenario::return_shared(registry);
    finish(scenario, clock);
}
