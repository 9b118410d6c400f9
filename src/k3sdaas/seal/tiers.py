"""Seal token tiers as Kubernetes groups; the numbering is the Move package's (``chain.abi.TIERS``)."""

from __future__ import annotations

from typing import Final

from ..chain.abi import TIERS
from .errors import SealError

TIER_NAMES: Final[dict[int, str]] = {tier: name for tier, (name, _) in TIERS.items() if tier >= 1}
GROUP_PREFIX: Final = "k3sdaas:"


def kubernetes_groups(tier: int) -> list[str]:
    """``2`` -> ``["k3sdaas:developer"]``; tier 0 (invalid) and unknown tiers have no group."""
    if isinstance(tier, bool) or tier not in TIER_NAMES:
        raise SealError(f"tier {tier!r} grants no Kubernetes access; valid tiers are 1-{max(TIER_NAMES)}")
    return [GROUP_PREFIX + TIER_NAMES[tier]]
