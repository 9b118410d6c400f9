/// Nautilus-style enclave registry: binds the ed25519 key of an AWS Nitro Enclave on chain.
///
/// The admin sets the expected PCR0/1/2. Anyone holding a fresh attestation document with those
/// measurements can register the key it carries; the attestation is verified once, here, and
/// later messages from the enclave are cheap ed25519 signatures over BCS `IntentMessage`s.
module k3s_daas::registry;

use k3s_daas::staking::AdminCap;
use std::bcs;
use sui::clock::Clock;
use sui::ed25519;
use sui::event;
use sui::nitro_attestation::NitroAttestationDocument;

// === Errors ===

const EInvalidPcrLength: u64 = 100;
const EDebugPcrs: u64 = 101;
const ENoPcrsConfigured: u64 = 102;
const EPcrMismatch: u64 = 103;
const EInvalidPublicKey: u64 = 104;
const EStaleAttestation: u64 = 105;

// === Constants ===

/// SHA-384 measurements.
const PCR_LENGTH: u64 = 48;
const ED25519_PUBLIC_KEY_LENGTH: u64 = 32;
/// An attestation document older than this (10 minutes) cannot register a key.
const MAX_ATTESTATION_AGE_MS: u64 = 600_000;

// === Objects ===

public struct EnclaveRegistry has key {
    id: UID,
    pcr0: vector<u8>,
    pcr1: vector<u8>,
    pcr2: vector<u8>,
    /// Bumped by every `update_pcrs`; 0 means no PCRs configured yet.
    pcr_version: u64,
    /// Raw ed25519 key of the registered enclave; empty when none is trusted.
    enclave_pk: vector<u8>,
    /// The `pcr_version` the key was attested under.
    enclave_pcr_version: u64,
    registered_at_ms: u64,
}

/// What the enclave signs: BCS of this struct, raw ed25519, no hashing.
public struct IntentMessage<P: drop> has copy, drop {
    intent: u8,
    timestamp_ms: u64,
    payload: P,
}

// === Events ===

public struct PcrsUpdated has copy, drop {
    pcr_version: u64,
    pcr0: vector<u8>,
    pcr1: vector<u8>,
    pcr2: vector<u8>,
}

public struct EnclaveRegistered has copy, drop {
    public_key: vector<u8>,
    pcr_version: u64,
    attested_at_ms: u64,
    registered_by: address,
}

fun init(ctx: &mut TxContext) {
    transfer::share_object(EnclaveRegistry {
        id: object::new(ctx),
        pcr0: vector[],
        pcr1: vector[],
        pcr2: vector[],
        pcr_version: 0,
        enclave_pk: vector[],
        enclave_pcr_version: 0,
        registered_at_ms: 0,
    });
}

// === Entry functions ===

/// Sets the expected measurements. The registered key, attested under the old ones, is dropped.
public fun update_pcrs(
    registry: &mut EnclaveRegistry,
    cap: &AdminCap,
    pcr0: vector<u8>,
    pcr1: vector<u8>,
    pcr2: vector<u8>,
) {
    // The capability's type is the authorisation.
    let _ = cap;
    assert!(
        pcr0.length() == PCR_LENGTH && pcr1.length() == PCR_LENGTH && pcr2.length() == PCR_LENGTH,
        EInvalidPcrLength,
    );
    assert!(!is_all_zero(&pcr0) && !is_all_zero(&pcr1) && !is_all_zero(&pcr2), EDebugPcrs);
    registry.pcr0 = pcr0;
    registry.pcr1 = pcr1;
    registry.pcr2 = pcr2;
    registry.pcr_version = registry.pcr_version + 1;
    registry.enclave_pk = vector[];
    event::emit(PcrsUpdated { pcr_version: registry.pcr_version, pcr0, pcr1, pcr2 });
}

/// Registers the enclave key carried by a verified attestation document. The PTB is
/// `0x2::nitro_attestation::load_nitro_attestation(bytes, 0x6)` then this call with its result.
public fun register_enclave(
    registry: &mut EnclaveRegistry,
    document: NitroAttestationDocument,
    clock: &Clock,
    ctx: &mut TxContext,
) {
    let (pcr0, pcr1, pcr2) = document_pcrs(&document);
    registry.register_attested(
        pcr0,
        pcr1,
        pcr2,
        *document.public_key(),
        *document.timestamp(),
        clock,
        ctx,
    );
}

// === Signature verification ===

/// True when `signature` is the registered enclave's ed25519 signature over
/// `bcs(IntentMessage { intent, timestamp_ms, payload })`. False when no enclave is registered
/// under the current PCRs. Freshness of `timestamp_ms` is the caller's business.
public fun verify_enclave_signature<P: drop>(
    registry: &EnclaveRegistry,
    intent: u8,
    timestamp_ms: u64,
    payload: P,
    signature: &vector<u8>,
): bool {
    if (!registry.has_current_enclave()) return false;
    let message = IntentMessage { intent, timestamp_ms, payload };
    let message_bytes = bcs::to_bytes(&message);
    ed25519::ed25519_verify(signature, &registry.enclave_pk, &message_bytes)
}

// === Read functions ===

public fun pcr_version(registry: &EnclaveRegistry): u64 {
    registry.pcr_version
}

public fun pcrs(registry: &EnclaveRegistry): (vector<u8>, vector<u8>, vector<u8>) {
    (registry.pcr0, registry.pcr1, registry.pcr2)
}

public fun enclave_pk(registry: &EnclaveRegistry): vector<u8> {
    registry.enclave_pk
}

public fun has_current_enclave(registry: &EnclaveRegistry): bool {
    !registry.enclave_pk.is_empty() && registry.enclave_pcr_version == registry.pcr_version
}

// === Private helpers ===

/// The checks and effects of `register_enclave`, on values already taken out of the document
/// (an absent PCR is an empty vector).
fun register_attested(
    registry: &mut EnclaveRegistry,
    pcr0: vector<u8>,
    pcr1: vector<u8>,
    pcr2: vector<u8>,
    public_key: Option<vector<u8>>,
    attested_at_ms: u64,
    clock: &Clock,
    ctx: &TxContext,
) {
    assert!(registry.pcr_version > 0, ENoPcrsConfigured);
    assert!(!is_all_zero(&pcr0) && !is_all_zero(&pcr1) && !is_all_zero(&pcr2), EDebugPcrs);
    assert!(pcr0 == registry.pcr0 && pcr1 == registry.pcr1 && pcr2 == registry.pcr2, EPcrMismatch);
    assert!(
        public_key.is_some() && public_key.borrow().length() == ED25519_PUBLIC_KEY_LENGTH,
        EInvalidPublicKey,
    );
    let now = clock.timestamp_ms();
    assert!(
        now <= attested_at_ms || now - attested_at_ms <= MAX_ATTESTATION_AGE_MS,
        EStaleAttestation,
    );
    let public_key = public_key.destroy_some();
    registry.enclave_pk = public_key;
    registry.enclave_pcr_version = registry.pcr_version;
    registry.registered_at_ms = now;
    event::emit(EnclaveRegistered {
        public_key,
        pcr_version: registry.pcr_version,
        attested_at_ms,
        registered_by: ctx.sender(),
    });
}

/// PCR0, PCR1 and PCR2 of the document, looked up by index (the list also holds PCR3, 4, 8...).
fun document_pcrs(document: &NitroAttestationDocument): (vector<u8>, vector<u8>, vector<u8>) {
    let entries = document.pcrs();
    let mut pcr0: vector<u8> = vector[];
    let mut pcr1: vector<u8> = vector[];
    let mut pcr2: vector<u8> = vector[];
    let mut i = 0;
    while (i < entries.length()) {
        let entry = entries.borrow(i);
        let index = entry.index();
        if (index == 0) {
            pcr0 = *entry.value();
        } else if (index == 1) {
            pcr1 = *entry.value();
        } else if (index == 2) {
            pcr2 = *entry.value();
        };
        i = i + 1;
    };
    (pcr0, pcr1, pcr2)
}

/// Debug-mode enclaves report all-zero PCRs. An empty vector (PCR absent) is not all-zero.
fun is_all_zero(bytes: &vector<u8>): bool {
    if (bytes.is_empty()) return false;
    let mut i = 0;
    while (i < bytes.length()) {
        if (*bytes.borrow(i) != 0) return false;
        i = i + 1;
    };
    true
}

// === Test-only helpers ===

#[test_only]
public fun init_for_testing(ctx: &mut TxContext) {
    init(ctx);
}

/// Registers a key as if it came in an attestation document with these fields. Move tests cannot
/// make a real document carrying a key whose private half they know, so signature tests use this.
#[test_only]
public fun register_attested_for_testing(
    registry: &mut EnclaveRegistry,
    pcr0: vector<u8>,
    pcr1: vector<u8>,
    pcr2: vector<u8>,
    public_key: Option<vector<u8>>,
    attested_at_ms: u64,
    clock: &Clock,
    ctx: &TxContext,
) {
    registry.register_attested(pcr0, pcr1, pcr2, public_key, attested_at_ms, clock, ctx);
}
