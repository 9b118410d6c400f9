"""Objects as the stand-in stores them, their persistence codec, Sui-JSON rendering and BCS contents.

Field values are plain Python: ints, bools, ``str`` ids/addresses (0x + 64 hex), ``bytes`` for
``vector<u8>``, lists, dicts for nested structs, ``None``/value for ``Option`` and ``Table`` for tables.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import base58

from .movetypes import FIELD_TYPE, FRAMEWORK, MoveType, MoveTypeError, parse_type

# Struct layouts by fully qualified name: field name -> qualified MoveType.
Layouts = dict[str, list[tuple[str, MoveType]]]


@dataclass
class Table:
    """A ``sui::table::Table`` value ``{id, size}``; each entry is a ``dynamic_field::Field`` object owned by ``id``."""

    id: str
    size: int = 0


@dataclass(frozen=True)
class PureBytes:
    """A pure PTB input not yet given a Move type (its bytes are already BCS)."""

    data: bytes


@dataclass
class StructValue:
    """A value of a struct without ``key`` (e.g. a NitroAttestationDocument) travelling between commands."""

    type: str
    fields: dict[str, Any]


@dataclass
class Owner:
    """``kind`` is ADDRESS, OBJECT, SHARED or IMMUTABLE; ``address`` for ADDRESS and OBJECT (the parent's id),
    ``initial_shared_version`` for SHARED."""

    kind: str
    address: str | None = None
    initial_shared_version: int | None = None


@dataclass
class LiveObject:
    """An object as loaded for (or created by) one transaction."""

    id: str
    type: str
    fields: dict[str, Any]
    owner: Owner | None
    version: int = 0
    digest: str = ""
    previous_transaction: str = ""
    storage_rebate: int = 0
    has_public_transfer: bool = False
    package: dict[str, Any] | None = None  # set for package objects only

    @property
    def owned_by(self) -> Owner:
        """The owner of a stored object (only objects created by a running transaction have none yet)."""
        assert self.owner is not None, f"object {self.id} has no owner"
        return self.owner

    @property
    def is_coin(self) -> bool:
        return self.type.startswith("0x" + "0" * 63 + "2::coin::Coin<")


def object_digest(object_id: str, version: int, tx_digest: str) -> str:
    """Synthetic but stable 32-byte digest (real nodes hash the object's BCS)."""
    raw = hashlib.blake2b(f"{object_id}:{version}:{tx_digest}".encode(), digest_size=32).digest()
    return base58.b58encode(raw).decode()


def encode_value(value: Any) -> Any:
    """To JSON-storable form (bytes and tables are tagged)."""
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, Table):
        return {"$table": value.id, "size": value.size}
    if isinstance(value, dict):
        return {k: encode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    return value


def decode_value(value: Any) -> Any:
    """Inverse of :func:`encode_value`."""
    if isinstance(value, dict):
        if "$bytes" in value:
            return bytes.fromhex(value["$bytes"])
        if "$table" in value:
            return Table(value["$table"], value["size"])
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


def render_json(value: Any, t: MoveType, layouts: Layouts) -> Any:
    """Render a Move value the way Sui's RPC JSON does.

    u8/u16/u32 as numbers, u64/u128/u256 and ``Balance`` as decimal strings, ``vector<u8>`` as base64,
    UID/ID/address as 0x-hex, ``Table`` as ``{"id", "size"}``, ``Option`` as null or the value.
    """
    name = t.name
    if name in ("u8", "u16", "u32"):
        return int(value)
    if name in ("u64", "u128", "u256"):
        return str(value)
    if name in ("bool", "address"):
        return value
    if name == "vector":
        if t.args[0].name == "u8":
            return base64.b64encode(bytes(value)).decode()
        return [render_json(v, t.args[0], layouts) for v in value]
    base = t.base
    if base in ("UID", "ID"):
        return value
    if base == "Balance":
        return str(value)
    if base == "String":
        return value
    if base == "Option":
        return None if value is None else render_json(value, t.args[0], layouts)
    if base == "Table":
        return {"id": value.id, "size": str(value.size)}
    layout = _layout(t, layouts)
    return {fname: render_json(value[fname], ftype, layouts) for fname, ftype in layout}


def uleb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def to_bcs(value: Any, t: MoveType, layouts: Layouts) -> bytes:
    """BCS bytes of a Move value (object contents, event contents)."""
    sizes = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "u128": 16, "u256": 32}
    if t.name in sizes:
        return int(value).to_bytes(sizes[t.name], "little")
    if t.name == "bool":
        return b"\x01" if value else b"\x00"
    if t.name == "address" or t.base in ("UID", "ID"):
        return bytes.fromhex(value[2:])
    if t.name == "vector":
        if t.args[0].name == "u8":
            return uleb128(len(value)) + bytes(value)
        return uleb128(len(value)) + b"".join(to_bcs(v, t.args[0], layouts) for v in value)
    if t.base == "Balance":
        return int(value).to_bytes(8, "little")
    if t.base == "String":
        raw = value.encode()
        return uleb128(len(raw)) + raw
    if t.base == "Option":
        return b"\x00" if value is None else b"\x01" + to_bcs(value, t.args[0], layouts)
    if t.base == "Table":
        return bytes.fromhex(value.id[2:]) + value.size.to_bytes(8, "little")
    layout = _layout(t, layouts)
    return b"".join(to_bcs(value[fname], ftype, layouts) for fname, ftype in layout)


def _layout(t: MoveType, layouts: Layouts) -> list[tuple[str, MoveType]]:
    """A struct's fields; ``dynamic_field::Field<K, V>`` is generic, so its layout comes from its arguments."""
    if t.name == FIELD_TYPE:
        return [("id", MoveType(f"{FRAMEWORK}::object::UID")), ("name", t.args[0]), ("value", t.args[1])]
    layout = layouts.get(t.name)
    if layout is None:
        raise MoveTypeError(f"no layout for struct {t.name}")
    return layout


def struct_type(type_str: str) -> MoveType:
    """Parse an object's type string (``0x…::coin::Coin<0x…::sui::SUI>``)."""
    return parse_type(type_str)
