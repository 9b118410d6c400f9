"""Move type strings: parsing, address normalisation and BCS decoding of pure arguments.

Handler tables write parameter types as the Move source does (``&mut StakePool``, ``Coin<SUI>``,
``vector<u8>``); ``qualify`` turns them into the fully qualified names a node reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

FRAMEWORK = "0x" + "0" * 63 + "2"
STDLIB = "0x" + "0" * 63 + "1"
CLOCK_ID = "0x" + "0" * 63 + "6"
SUI_TYPE = f"{FRAMEWORK}::sui::SUI"
COIN_TYPE = f"{FRAMEWORK}::coin::Coin<{SUI_TYPE}>"
FIELD_TYPE = f"{FRAMEWORK}::dynamic_field::Field"

PRIMITIVES = ("bool", "u8", "u16", "u32", "u64", "u128", "u256", "address", "signer")

# Framework structs a k3s_daas signature may name without a path (imported by `use` in the sources).
FRAMEWORK_STRUCTS: dict[str, str] = {
    "UID": f"{FRAMEWORK}::object::UID",
    "ID": f"{FRAMEWORK}::object::ID",
    "Coin": f"{FRAMEWORK}::coin::Coin",
    "Balance": f"{FRAMEWORK}::balance::Balance",
    "SUI": SUI_TYPE,
    "Clock": f"{FRAMEWORK}::clock::Clock",
    "TxContext": f"{FRAMEWORK}::tx_context::TxContext",
    "Table": f"{FRAMEWORK}::table::Table",
    "Option": f"{STDLIB}::option::Option",
    "String": f"{STDLIB}::string::String",
    "NitroAttestationDocument": f"{FRAMEWORK}::nitro_attestation::NitroAttestationDocument",
    "PCREntry": f"{FRAMEWORK}::nitro_attestation::PCREntry",
    "UpgradeCap": f"{FRAMEWORK}::package::UpgradeCap",
}

_ADDR_IN_TYPE = re.compile(r"0x([0-9a-fA-F]{1,64})(?=::)")


class MoveTypeError(ValueError):
    """A type string or a pure value does not parse."""


def normalize_address(value: str) -> str:
    """``0x2`` -> ``0x000…0002``; rejects anything that is not 1..64 hex digits."""
    text = value.lower().removeprefix("0x")
    if not text or len(text) > 64 or not re.fullmatch(r"[0-9a-f]+", text):
        raise MoveTypeError(f"not a Sui address or object id: {value!r}")
    return "0x" + text.rjust(64, "0")


def normalize_type(type_str: str) -> str:
    """Pad every address inside a type string (pysui sends ``0x2::coin::Coin<0x2::sui::SUI>``)."""
    text = _ADDR_IN_TYPE.sub(lambda m: normalize_address(m.group(1)), type_str.replace(" ", ""))
    return text.replace(",", ", ")


@dataclass(frozen=True)
class MoveType:
    """A parsed signature token: ``ref`` is "", "&" or "&mut"; ``name`` a primitive, "vector" or a struct path."""

    name: str
    args: tuple[MoveType, ...] = ()
    ref: str = ""

    @property
    def base(self) -> str:
        """The struct's own name without module path (``Coin`` for ``0x2::coin::Coin``)."""
        return self.name.rsplit("::", 1)[-1]

    def render(self) -> str:
        inner = self.name + (f"<{', '.join(a.render() for a in self.args)}>" if self.args else "")
        return f"{self.ref} {inner}".strip() if self.ref == "&mut" else f"{self.ref}{inner}"


def parse_type(text: str) -> MoveType:
    """Parse ``&mut Table<ID, vector<u8>>``-style text."""
    tokens = re.findall(r"&mut|&|<|>|,|[A-Za-z0-9_:]+", text)
    if "".join(tokens) != re.sub(r"\s+", "", text):
        raise MoveTypeError(f"unparsable Move type {text!r}")
    pos = 0

    def parse() -> MoveType:
        nonlocal pos
        ref = ""
        if pos < len(tokens) and tokens[pos] in ("&", "&mut"):
            ref = tokens[pos]
            pos += 1
        if pos >= len(tokens):
            raise MoveTypeError(f"truncated Move type {text!r}")
        name = tokens[pos]
        pos += 1
        args: list[MoveType] = []
        if pos < len(tokens) and tokens[pos] == "<":
            pos += 1
            while True:
                args.append(parse())
                if pos >= len(tokens):
                    raise MoveTypeError(f"unclosed '<' in {text!r}")
                sep = tokens[pos]
                pos += 1
                if sep == ">":
                    break
                if sep != ",":
                    raise MoveTypeError(f"unexpected {sep!r} in {text!r}")
        return MoveType(name, tuple(args), ref)

    result = parse()
    if pos != len(tokens):
        raise MoveTypeError(f"trailing text in Move type {text!r}")
    return result


@dataclass
class TypeScope:
    """Resolves short struct names of one package: ``structs`` maps a struct name to its module."""

    package_id: str
    structs: dict[str, str] = field(default_factory=dict)

    def qualify(self, t: MoveType) -> MoveType:
        """Replace short names by fully qualified ones (``StakePool`` -> ``0x…::staking::StakePool``)."""
        args = tuple(self.qualify(a) for a in t.args)
        name = t.name
        if name in PRIMITIVES or name == "vector" or "::" in name:
            name = normalize_type(name) if "::" in name else name
        elif name in self.structs:
            name = f"{self.package_id}::{self.structs[name]}::{name}"
        elif name in FRAMEWORK_STRUCTS:
            name = FRAMEWORK_STRUCTS[name]
            if name == SUI_TYPE:
                return MoveType(name, (), t.ref)
        else:
            raise MoveTypeError(f"unknown struct {name!r} in package scope")
        return MoveType(name, args, t.ref)


class BcsReader:
    """Reads one BCS value of a given Move type from pure-argument bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise MoveTypeError("pure argument is shorter than its type requires")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uleb(self) -> int:
        value, shift = 0, 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def read(self, t: MoveType) -> Any:
        sizes = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "u128": 16, "u256": 32}
        if t.name in sizes:
            return int.from_bytes(self.take(sizes[t.name]), "little")
        if t.name == "bool":
            flag = self.take(1)[0]
            if flag > 1:
                raise MoveTypeError("bool argument is neither 0 nor 1")
            return flag == 1
        if t.name == "address" or t.base in ("ID", "UID"):
            return "0x" + self.take(32).hex()
        if t.name == "vector":
            length = self.uleb()
            if t.args[0].name == "u8":
                return self.take(length)
            return [self.read(t.args[0]) for _ in range(length)]
        if t.base == "String":
            return self.take(self.uleb()).decode("utf-8")
        if t.base == "Option":
            return self.read(t.args[0]) if self.take(1)[0] else None
        raise MoveTypeError(f"{t.render()} cannot be passed as a pure argument")


def decode_pure(data: bytes, t: MoveType) -> Any:
    """Decode a whole pure argument; trailing bytes are an error as on a real node."""
    reader = BcsReader(data)
    value = reader.read(t)
    if reader.pos != len(data):
        raise MoveTypeError(f"pure argument has {len(data) - reader.pos} bytes left after {t.render()}")
    return value
