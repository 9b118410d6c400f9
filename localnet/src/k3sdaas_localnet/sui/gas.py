"""A flat gas model in the shape of Sui's: computation bucket, per-byte storage, 99 % rebate."""

from __future__ import annotations

import json
from dataclasses import dataclass

from .objects import LiveObject, encode_value

REFERENCE_GAS_PRICE = 1000
COMPUTATION_UNITS = 1000  # Sui's smallest computation bucket
STORAGE_PRICE = 76  # MIST per storage unit, as on mainnet
STORAGE_UNITS_PER_BYTE = 100
OBJECT_OVERHEAD_BYTES = 100
REBATE_RATE_BPS = 9900
MAX_TX_GAS = 50_000_000_000


@dataclass(frozen=True)
class GasCharge:
    computation_cost: int
    storage_cost: int
    storage_rebate: int
    non_refundable_storage_fee: int

    @property
    def net(self) -> int:
        return self.computation_cost + self.storage_cost - self.storage_rebate


def computation_cost(gas_price: int) -> int:
    return COMPUTATION_UNITS * gas_price


def object_storage_cost(obj: LiveObject) -> int:
    """What storing ``obj`` costs; also what it refunds (less 1 %) when later mutated or deleted."""
    size = OBJECT_OVERHEAD_BYTES + len(obj.type) + len(json.dumps(encode_value(obj.fields)))
    return size * STORAGE_UNITS_PER_BYTE * STORAGE_PRICE // 100


def charge(gas_price: int, written: list[LiveObject], released_rebates: list[int]) -> GasCharge:
    """Cost of writing ``written`` and releasing objects that held ``released_rebates``."""
    stored = sum(object_storage_cost(o) for o in written)
    released = sum(released_rebates)
    rebate = released * REBATE_RATE_BPS // 10_000
    return GasCharge(computation_cost(gas_price), stored, rebate, released - rebate)
