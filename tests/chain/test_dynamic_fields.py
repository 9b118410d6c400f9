"""Dynamic-field ids and TypeTag BCS against vectors computed by Mysten's TS SDK (tests/fixtures/sui)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from k3sdaas.chain import InvalidArgument
from k3sdaas.chain.dynamic_fields import derive_dynamic_field_id, type_tag_bcs

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sui" / "dynamic_field_ids.json"
VECTORS = json.loads(FIXTURE.read_text())


@pytest.mark.parametrize("vector", VECTORS["vectors"],
                         ids=lambda v: f"{v['key_type']}:{v['key_bcs'][:8]}:{v['parent'][:6]}")
def test_ids_match_the_ts_sdk(vector: dict[str, str]) -> None:
    assert type_tag_bcs(vector["key_type"]).hex() == vector["type_tag_bcs"]
    key = bytes.fromhex(vector["key_bcs"])
    assert derive_dynamic_field_id(vector["parent"], vector["key_type"], key) == vector["id"]


def test_the_vectors_cover_both_table_key_types() -> None:
    assert {"0x2::object::ID", "vector<u8>"} <= {v["key_type"] for v in VECTORS["vectors"]}


def test_short_and_long_addresses_in_types_are_the_same_tag() -> None:
    assert type_tag_bcs("0x2::object::ID") == type_tag_bcs("0x" + "0" * 63 + "2::object::ID")


@pytest.mark.parametrize("bad", ["vector<u8", "Table<ID>", "0x2::object", "u8<u8>", "vector<u8>>", "0xzz::m::T", ""])
def test_malformed_types_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        type_tag_bcs(bad)
