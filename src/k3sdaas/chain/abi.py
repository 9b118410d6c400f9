"""The k3s_daas Move package as the client sees it (move/README.md is the source of truth).

Only names and numbers live here: module and function names, abort codes, tiers and defaults.
"""

from __future__ import annotations

from typing import Final

STAKING: Final = "staking"
REGISTRY: Final = "registry"
GATEWAY: Final = "k8s_gateway"
MODULES: Final = (STAKING, REGISTRY, GATEWAY)

CLOCK_ID: Final = "0x6"
FRAMEWORK: Final = "0x" + "0" * 63 + "2"
UPGRADE_CAP_TYPE: Final = f"{FRAMEWORK}::package::UpgradeCap"
NITRO_LOAD: Final = "0x2::nitro_attestation::load_nitro_attestation"

MAX_NODE_ID_BYTES: Final = 64
MAX_BPS: Final = 10_000
DEFAULT_TOKEN_TTL_MS: Final = 2_592_000_000
PCR_BYTES: Final = 48

# tier -> (name, minimum stake in MIST); tier 0 means "invalid".
TIERS: Final = {
    0: ("none", 0),
    1: ("viewer", 500_000_000),
    2: ("developer", 2_000_000_000),
    3: ("admin", 5_000_000_000),
    4: ("super-user", 10_000_000_000),
}
MIN_STAKE_MIST: Final = TIERS[1][1]

# Abort codes by module, as declared in the Move sources.
ABORT_CODES: Final[dict[str, dict[int, str]]] = {
    STAKING: {
        1: "EStakeTooLow",
        2: "EInvalidNodeId",
        3: "ENodeAlreadyStaked",
        4: "ETokenNotFound",
        5: "ECooldownActive",
        6: "EInvalidBps",
        7: "EStakeBelowMinimum",
        8: "EInvalidTtl",
        9: "EZeroAmount",
        10: "EWrongPool",
        11: "EInsufficientPenalties",
    },
    REGISTRY: {
        100: "EInvalidPcrLength",
        101: "EDebugPcrs",
        102: "ENoPcrsConfigured",
        103: "EPcrMismatch",
        104: "EInvalidPublicKey",
        105: "EStaleAttestation",
    },
    GATEWAY: {
        200: "ETokenInvalid",
        201: "ETierTooLow",
        202: "EInvalidMethod",
        203: "EInvalidSignature",
        204: "ETimestampOutOfWindow",
        205: "EInvalidBatch",
    },
}


def tier_for_amount(amount_mist: int) -> int:
    """The tier a stake buys, as ``staking::tier_for_amount`` computes it."""
    return max((tier for tier, (_, minimum) in TIERS.items() if amount_mist >= minimum and tier), default=0)


def tier_name(tier: int) -> str:
    return TIERS.get(tier, ("unknown", 0))[0]


def tier_by_name(name_or_number: str | int) -> int:
    """``"developer"`` or ``2`` -> 2."""
    if isinstance(name_or_number, int) or str(name_or_number).isdigit():
        tier = int(name_or_number)
        if tier in TIERS:
            return tier
    else:
        for tier, (name, _) in TIERS.items():
            if name == str(name_or_number).lower():
                return tier
    raise ValueError(f"unknown tier {name_or_number!r}; use 0-4 or one of {', '.join(n for n, _ in TIERS.values())}")


def event_type(package_id: str, module: str, name: str) -> str:
    return f"{package_id}::{module}::{name}"


def target(package_id: str, module: str, function: str) -> str:
    return f"{package_id}::{module}::{function}"
