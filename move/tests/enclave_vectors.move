/// Ed25519 vectors made outside Move (Move tests cannot sign). Generated and checked by
/// tests/move/test_enclave_vectors.py: the key is derived from a fixed seed, each signature is over
/// BCS(registry::IntentMessage { intent, timestamp_ms, payload }) with the payload below.
#[test_only]
module k3s_daas::enclave_vectors;

const ENCLAVE_PUBLIC_KEY: vector<u8> =
    x"1d39f85be7ef04692beeb353228891e67049b37015d5e1b28738e29ec04033c9";
const SIGNED_AT_MS: u64 = 1_700_000_000_000;
const PING_INTENT: u8 = 0;
const PING_PAYLOAD: vector<u8> = b"k3s-daas registry test";
const AUDIT_MERKLE_ROOT: vector<u8> =
    x"8d9ec76f1ab812a061a3626bd7002aab275401aa0fcddd31b08c863036d426df";
const AUDIT_COUNT: u64 = 3;
const AUDIT_FIRST_SEQ: u64 = 10;
const AUDIT_LAST_SEQ: u64 = 12;
const SLASH_TOKEN_ID: address = @0x8e1c64bb8c178838085c9924323cc62b65a6ab81ee58fd800bff90e3eac221fa;
const SLASH_BPS: u64 = 1_000;
const SLASH_REASON: vector<u8> = b"missed heartbeats";
const SLASH_LATER_SIGNED_AT_MS: u64 = 1_700_000_001_000;
const PING_SIGNATURE: vector<u8> =
    x"b7db41c86973f6c852c0a20b797c867c23263b5d8cdd48add51962ddaa64bb3aad1e3faecc176261e32f66e2980a532caa7e56ff4ebe044fbfcef59701d34507";
const AUDIT_SIGNATURE: vector<u8> =
    x"022e5a4e0a6bbb0693299bfc75e3c1aa0baaaab62222501770a32960e21453ff007f8f0c7946cb5cb77d1f7375abb0a9e518dfbc58f047aee0c729c9c762ea05";
const SLASH_SIGNATURE: vector<u8> =
    x"f278bbd1c3677906e7c1f186056d8aed1706d66f8d306b6cde811fe0d697522a60b7d3d10b18f503ed2b3826ff407118d1b1ec83d8c5c972fd42b2d9188de10c";
const SLASH_ZERO_BPS_SIGNATURE: vector<u8> =
    x"8edb2c165c58384460113d0fef7041e98a9ad0372e13360c94af69f030b67bba0ec634e371af0b02c4dae08a4d910917588abf0c381c73c28251a8e8e074bc08";
const SLASH_LATER_SIGNATURE: vector<u8> =
    x"97f404e157d7b9a5561421d580bb6ee8ce12b6974cb7fb9fe12bd9820fb2bca4eb15a1eb6c62968bf3398672a5657d0c81bd4c6b07d5786e58c55ed64f9ed004";

/// Any 48-byte non-zero measurements do for the test-only registration path.
const TEST_PCR0: vector<u8> =
    x"010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101";
const TEST_PCR1: vector<u8> =
    x"020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202";
const TEST_PCR2: vector<u8> =
    x"030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303";

public fun enclave_public_key(): vector<u8> { ENCLAVE_PUBLIC_KEY }

public fun signed_at_ms(): u64 { SIGNED_AT_MS }

public fun ping_intent(): u8 { PING_INTENT }

public fun ping_payload(): vector<u8> { PING_PAYLOAD }

public fun ping_signature(): vector<u8> { PING_SIGNATURE }

public fun audit_merkle_root(): vector<u8> { AUDIT_MERKLE_ROOT }

public fun audit_count(): u64 { AUDIT_COUNT }

public fun audit_first_seq(): u64 { AUDIT_FIRST_SEQ }

public fun audit_last_seq(): u64 { AUDIT_LAST_SEQ }

public fun audit_signature(): vector<u8> { AUDIT_SIGNATURE }

public fun slash_token_id(): ID { object::id_from_address(SLASH_TOKEN_ID) }

public fun slash_bps(): u64 { SLASH_BPS }

public fun slash_reason(): vector<u8> { SLASH_REASON }

public fun slash_signature(): vector<u8> { SLASH_SIGNATURE }

public fun slash_zero_bps_signature(): vector<u8> { SLASH_ZERO_BPS_SIGNATURE }

public fun slash_later_signed_at_ms(): u64 { SLASH_LATER_SIGNED_AT_MS }

public fun slash_later_signature(): vector<u8> { SLASH_LATER_SIGNATURE }

public fun test_pcr0(): vector<u8> { TEST_PCR0 }

public fun test_pcr1(): vector<u8> { TEST_PCR1 }

public fun test_pcr2(): vector<u8> { TEST_PCR2 }
