"""SUI <-> MIST conversion and amount validation (pure)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from k3sdaas.chain import InvalidAmount, format_sui, mist_to_sui, parse_amount, sui_to_mist
from k3sdaas.errors import InvalidInput


@pytest.mark.parametrize(
    ("value", "unit", "mist"),
    [
        (2, "SUI", 2_000_000_000),
        (2.5, "SUI", 2_500_000_000),
        ("0.1", "SUI", 100_000_000),
        (0.1, "SUI", 100_000_000),
        ("2.5 SUI", "MIST", 2_500_000_000),
        ("2500000000 MIST", "SUI", 2_500_000_000),
        ("7 mist", "SUI", 7),
        ("1_000_000_000", "MIST", 1_000_000_000),
        ("0.000000001", "SUI", 1),
        (18_446_744_073_709_551_615, "MIST", 2**64 - 1),
    ],
)
def test_parse_amount_accepts_numbers_and_units(value: object, unit: str, mist: int) -> None:
    assert parse_amount(value, default_unit=unit) == mist


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (0, "positive"),
        ("-1", "must look like"),
        ("0.0000000001", "finer than"),
        ("1.5 MIST", "finer than"),
        ("two", "must look like"),
        ("2 ETH", "must look like"),
        (True, "number of SUI"),
        (None, "number of SUI"),
        ("18446744073709551616 MIST", "u64"),
        ("", "must look like"),
    ],
)
def test_parse_amount_refuses_bad_values_naming_the_field(value: object, reason: str) -> None:
    with pytest.raises(InvalidAmount) as caught:
        parse_amount(value, field="stake")
    assert reason in str(caught.value)
    assert caught.value.field == "stake"
    assert isinstance(caught.value, InvalidInput)


def test_unknown_default_unit_is_refused() -> None:
    with pytest.raises(InvalidAmount) as caught:
        parse_amount(1, default_unit="ETH")
    assert caught.value.field == "unit"


def test_round_trip_is_exact() -> None:
    for mist in (1, 999_999_999, 1_000_000_000, 123_456_789_012):
        assert sui_to_mist(mist_to_sui(mist)) == mist
    assert mist_to_sui(2_500_000_000) == Decimal("2.5")
    assert mist_to_sui(0) == 0
    assert format_sui(500_000_000) == "0.5 SUI"
    assert format_sui(10_000_000_000) == "10 SUI"
