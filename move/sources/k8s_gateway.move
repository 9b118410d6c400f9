/// The Kubernetes side of the chain: requests gated by a valid `SealToken`, audit batches and
/// slashes signed by the registered enclave. Everything here ends in an event that the master and
/// auditors list off chain.
module k3s_daas::k8s_gateway;

use k3s_daas::registry::EnclaveRegistry;
use k3s_daas::staking::{SealToken, StakePool};
use sui::clock::Clock;
use sui::event;

// === Errors ===

const ETokenInvalid: u64 = 200;
const ETierTooLow: u64 = 201;
const EInvalidMethod: u64 = 202;
const EInvalidSignature: u64 = 203;
const ETimestampOutOfWindow: u64 = 204;
const EInvalidBatch: u64 = 205;

// === Constants ===

/// Intent scopes of the enclave's signed messages (`registry::IntentMessage.intent`).
const INTENT_AUDIT_ANCHOR: u8 = 1;
const INTENT_SLASH: u8 = 2;

const TIER_VIEWER: u8 = 1;
const MERKLE_ROOT_LENGTH: u64 = 32;
/// A signed message's timestamp must be within 10 minutes of the clock, either way.
const SIGNATURE_WINDOW_MS: u64 = 600_000;

// === Signed payloads (BCS layout shared with the enclave) ===

public struct AuditBatch has copy, drop {
    merkle_root: vector<u8>,
    count: u64,
    first_seq: u64,
    last_seq: u64,
}

public struct SlashRequest has copy, drop {
    token_id: ID,
    bps: u64,
    reason: vector<u8>,
}

// === Events ===

public struct K8sRequestSubmitted has copy, drop {
    token_id: ID,
    requester: address,
    method: vector<u8>,
    path: vector<u8>,
    namespace: vector<u8>,
    payload_hash: vector<u8>,
    tier: u8,
    timestamp_ms: u64,
}

public struct AuditBatchAnchored has copy, drop {
    merkle_root: vector<u8>,
    count: u64,
    first_seq: u64,
    last_seq: u64,
    timestamp_ms: u64,
    pcr_version: u64,
}

// === Entry functions ===

/// Records a Kubernetes API request on chain. Viewers may only read (GET, LIST, WATCH).
public fun submit_k8s_request(
    pool: &StakePool,
    token: &SealToken,
    method: vector<u8>,
    path: vector<u8>,
    namespace: vector<u8>,
    payload_hash: vector<u8>,
    clock: &Clock,
    ctx: &TxContext,
) {
    let token_id = object::id(token);
    // A token of another pool has no record here, so it is invalid too.
    assert!(pool.is_valid(token_id, clock), ETokenInvalid);
    assert!(is_read_method(&method) || is_write_method(&method), EInvalidMethod);
    let tier = pool.tier(token_id);
    assert!(tier > TIER_VIEWER || is_read_method(&method), ETierTooLow);
    event::emit(K8sRequestSubmitted {
        token_id,
        requester: ctx.sender(),
        method,
        path,
        namespace,
        payload_hash,
        tier,
        timestamp_ms: clock.timestamp_ms(),
    });
}

/// Anchors the Merkle root of an audit batch (sequence numbers `first_seq..=last_seq`), signed by
/// the registered enclave.
public fun anchor_audit_batch(
    registry: &EnclaveRegistry,
    merkle_root: vector<u8>,
    count: u64,
    first_seq: u64,
    last_seq: u64,
    timestamp_ms: u64,
    signature: vector<u8>,
    clock: &Clock,
) {
    // Written as count - 1 == last_seq - first_seq so that nothing can overflow.
    assert!(
        merkle_root.length() == MERKLE_ROOT_LENGTH
            && count > 0
            && last_seq >= first_seq
            && count - 1 == last_seq - first_seq,
        EInvalidBatch,
    );
    assert_fresh(timestamp_ms, clock);
    let batch = AuditBatch { merkle_root, count, first_seq, last_seq };
    assert!(
        registry.verify_enclave_signature(INTENT_AUDIT_ANCHOR, timestamp_ms, batch, &signature),
        EInvalidSignature,
    );
    event::emit(AuditBatchAnchored {
        merkle_root,
        count,
        first_seq,
        last_seq,
        timestamp_ms,
        pcr_version: registry.pcr_version(),
    });
}

/// Slashes a node on the enclave's signed request, so the control plane needs no admin key.
public fun slash_by_enclave(
    pool: &mut StakePool,
    registry: &EnclaveRegistry,
    token_id: ID,
    bps: u64,
    reason: vector<u8>,
    timestamp_ms: u64,
    signature: vector<u8>,
    clock: &Clock,
) {
    assert_fresh(timestamp_ms, clock);
    let request = SlashRequest { token_id, bps, reason };
    assert!(
        registry.verify_enclave_signature(INTENT_SLASH, timestamp_ms, request, &signature),
        EInvalidSignature,
    );
    pool.apply_enclave_slash(token_id, bps, reason, timestamp_ms);
}

// === Private helpers ===

fun assert_fresh(timestamp_ms: u64, clock: &Clock) {
    let now = clock.timestamp_ms();
    let skew = if (now > timestamp_ms) now - timestamp_ms else timestamp_ms - now;
    assert!(skew <= SIGNATURE_WINDOW_MS, ETimestampOutOfWindow);
}

fun is_read_method(method: &vector<u8>): bool {
    let read_methods = vector[b"GET", b"LIST", b"WATCH"];
    read_methods.contains(method)
}

fun is_write_method(method: &vector<u8>): bool {
    let write_methods = vector[b"CREATE", b"UPDATE", b"PATCH", b"DELETE"];
    write_methods.contains(method)
}
