"""The pool's ``Table`` entries as a full node stores them: one ``dynamic_field::Field<K, V>`` object each.

``StakePool.records: Table<ID, StakeRecord>`` and ``StakePool.nodes: Table<vector<u8>, ID>`` are read
by deriving the entry's object id (:mod:`.dynamic_fields`) and decoding the object's BCS contents, so
a look-up costs one ``GetObject`` whatever the pool's size, on any full node (no event index needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

import canoser
from pysui.sui.sui_bcs import bcs

from .dynamic_fields import uleb128
from .errors import ChainError

ID_TYPE: Final = "0x2::object::ID"
NODE_KEY_TYPE: Final = "vector<u8>"


def id_bcs(object_id: str) -> bytes:
    return bytes.fromhex(object_id[2:])


def node_key_bcs(node_id: bytes) -> bytes:
    return uleb128(len(node_id)) + node_id


class _StakeRecord(canoser.Struct):
    """``staking::StakeRecord``, field for field as move/sources/staking.move declares it."""

    _fields: ClassVar[list[tuple[str, Any]]] = [
        ("node_id", [canoser.Uint8]), ("owner", bcs.Address), ("staker", bcs.Address), ("amount", canoser.Uint64),
        ("tier", canoser.Uint8), ("staked_at_ms", canoser.Uint64), ("expires_at_ms", canoser.Uint64),
        ("slashed_total", canoser.Uint64), ("last_enclave_slash_ms", canoser.Uint64),
    ]


class _RecordField(canoser.Struct):
    """``dynamic_field::Field<ID, StakeRecord>``: the field object's UID, the key, the value."""

    _fields: ClassVar[list[tuple[str, Any]]] = [("id", bcs.Address), ("name", bcs.Address), ("value", _StakeRecord)]


class _NodeField(canoser.Struct):
    """``dynamic_field::Field<vector<u8>, ID>``."""

    _fields: ClassVar[list[tuple[str, Any]]] = [("id", bcs.Address), ("name", [canoser.Uint8]), ("value", bcs.Address)]


@dataclass(frozen=True)
class StakeRecordEntry:
    token_id: str
    node_id: bytes
    owner: str
    staker: str
    amount: int
    tier: int
    staked_at_ms: int
    expires_at_ms: int
    slashed_total: int


def _decode(cls: Any, contents: bytes, what: str) -> Any:
    try:
        return cls.deserialize(contents)
    except Exception as exc:  # noqa: BLE001 - canoser raises assorted types on malformed bytes
        raise ChainError(f"{what} does not decode as the package's layout: {exc}") from None


def decode_record(contents: bytes) -> StakeRecordEntry:
    field = _decode(_RecordField, contents, "StakeRecord field")
    value = field.value
    return StakeRecordEntry(
        token_id=field.name.to_address_str(), node_id=bytes(value.node_id), owner=value.owner.to_address_str(),
        staker=value.staker.to_address_str(), amount=value.amount, tier=value.tier, staked_at_ms=value.staked_at_ms,
        expires_at_ms=value.expires_at_ms, slashed_total=value.slashed_total,
    )


def decode_node_entry(contents: bytes) -> str:
    """The token id a ``nodes`` entry points to."""
    address: str = _decode(_NodeField, contents, "node field").value.to_address_str()
    return address
