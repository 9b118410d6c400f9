"""Dynamic fields: where a ``sui::table::Table`` entry lives, and how to read it in one ``GetObject``.

A ``Table<K, V>`` stores each entry as a ``0x2::dynamic_field::Field<K, V>`` object owned by the table,
whose id Sui derives from the table id and the key (``derive_dynamic_field_id`` in
``sui-types/src/dynamic_field.rs``; ``deriveDynamicFieldID`` in the TS SDK):

    blake2b256(0xf0 || parent (32 bytes) || len(bcs(key)) as u64 LE || bcs(key) || bcs(TypeTag of K))

``0xf0`` is ``HashingIntentScope::ChildObjectId``. So an entry is found without listing the table.
The TypeTag is encoded here because pysui's ``TypeTag`` adds a length byte to ``vector<T>``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from .errors import InvalidArgument

CHILD_OBJECT_ID_SCOPE: Final = 0xF0
FIELD_TYPE: Final = "0x" + "0" * 63 + "2::dynamic_field::Field"

# TypeTag variant indexes (move-core-types ``TypeTag``).
_PRIMITIVE_TAGS: Final = {"bool": 0, "u8": 1, "u64": 2, "u128": 3, "address": 4, "signer": 5,
                          "u16": 8, "u32": 9, "u256": 10}
_VECTOR_TAG: Final = 6
_STRUCT_TAG: Final = 7
_TOKEN = re.compile(r"[A-Za-z0-9_]+(?:::[A-Za-z0-9_]+)*|[<>,]")


def uleb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def address_bytes(value: str) -> bytes:
    """``0x2`` or 0x + 64 hex -> 32 bytes."""
    text = value.lower().removeprefix("0x")
    if not 0 < len(text) <= 64 or not re.fullmatch(r"[0-9a-f]+", text):
        raise InvalidArgument(f"not a Sui address or object id: {value!r}", field="object_id")
    return bytes.fromhex(text.rjust(64, "0"))


def _identifier(name: str) -> bytes:
    raw = name.encode("ascii")
    return uleb128(len(raw)) + raw


def type_tag_bcs(type_str: str) -> bytes:
    """BCS of the ``TypeTag`` written ``type_str`` (``vector<u8>``, ``0x2::object::ID``, ``0x2::coin::Coin<…>``)."""
    tokens = _TOKEN.findall(type_str)
    if "".join(tokens) != re.sub(r"\s+", "", type_str):
        raise InvalidArgument(f"unparsable Move type {type_str!r}", field="type")
    pos = 0

    def parse() -> bytes:
        nonlocal pos
        if pos >= len(tokens):
            raise InvalidArgument(f"truncated Move type {type_str!r}", field="type")
        name = tokens[pos]
        pos += 1
        args: list[bytes] = []
        if pos < len(tokens) and tokens[pos] == "<":
            pos += 1
            while True:
                args.append(parse())
                if pos >= len(tokens) or tokens[pos] not in (",", ">"):
                    raise InvalidArgument(f"malformed type arguments in {type_str!r}", field="type")
                pos += 1
                if tokens[pos - 1] == ">":
                    break
        if name in _PRIMITIVE_TAGS and not args:
            return bytes([_PRIMITIVE_TAGS[name]])
        if name == "vector" and len(args) == 1:
            return bytes([_VECTOR_TAG]) + args[0]
        parts = name.split("::")
        if len(parts) != 3:
            raise InvalidArgument(f"{name!r} in {type_str!r} is not a Move type", field="type")
        return (bytes([_STRUCT_TAG]) + address_bytes(parts[0]) + _identifier(parts[1]) + _identifier(parts[2])
                + uleb128(len(args)) + b"".join(args))

    tag = parse()
    if pos != len(tokens):
        raise InvalidArgument(f"trailing text in Move type {type_str!r}", field="type")
    return tag


def derive_dynamic_field_id(parent_id: str, key_type: str, key_bcs: bytes) -> str:
    """The object id of the dynamic field of ``parent_id`` named by the key ``key_bcs`` of type ``key_type``."""
    hasher = hashlib.blake2b(digest_size=32)
    hasher.update(bytes([CHILD_OBJECT_ID_SCOPE]))
    hasher.update(address_bytes(parent_id))
    hasher.update(len(key_bcs).to_bytes(8, "little"))
    hasher.update(key_bcs)
    hasher.update(type_tag_bcs(key_type))
    return "0x" + hasher.hexdigest()


def field_type(key_type: str, value_type: str) -> str:
    """The type of the object holding one entry: ``0x2::dynamic_field::Field<K, V>``."""
    return f"{FIELD_TYPE}<{key_type}, {value_type}>"
