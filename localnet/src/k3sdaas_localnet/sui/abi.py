"""The ABI of a Move module in one comparable form, read from Move source or from a handler table.

Used by the parity test: every ``public``/``entry`` function (name, visibility, type parameters,
parameter names and types, return types), every ``u64`` abort constant and every struct (type
parameters, abilities, field names and types, in order). Types are compared without module paths
(``sui::coin::Coin<sui::sui::SUI>`` and ``Coin<SUI>`` are equal), as the sources import names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .handlers.base import MoveModule


@dataclass(frozen=True)
class FunctionAbi:
    visibility: str
    type_params: tuple[str, ...]
    params: tuple[tuple[str, str], ...]
    returns: tuple[str, ...]


@dataclass(frozen=True)
class StructAbi:
    abilities: frozenset[str]
    fields: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ModuleAbi:
    name: str
    functions: dict[str, FunctionAbi]
    aborts: dict[str, int]
    structs: dict[str, StructAbi]


def normalize_type(text: str) -> str:
    """Drop module paths and whitespace: ``& mut sui::clock::Clock`` -> ``&mut Clock``."""
    text = re.sub(r"\b(?:\w+::)+(\w+)", r"\1", text)
    text = re.sub(r"\s+", "", text)
    return text.replace("&mut", "&mut ")


def split_top_level(text: str) -> list[str]:
    """Split on commas outside ``<>`` and ``()``; drop empty items (trailing commas)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char in "<(":
            depth += 1
        elif char in ">)":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _named(items: list[str]) -> tuple[tuple[str, str], ...]:
    result = []
    for item in items:
        name, _, type_text = item.partition(":")
        result.append((name.strip(), normalize_type(type_text)))
    return tuple(result)


def _type_param_names(decl: str | None) -> tuple[str, ...]:
    if not decl:
        return ()
    return tuple(p.split(":")[0].replace("phantom", "").strip() for p in split_top_level(decl.strip("<>")))


def from_handlers(module: MoveModule) -> ModuleAbi:
    """The ABI the stand-in implements for ``module``."""
    functions = {
        f.name: FunctionAbi(f.visibility, f.type_params, _named(list(f.params)),
                            tuple(normalize_type(r) for r in f.returns))
        for f in module.functions
    }
    structs = {
        name.split("<")[0]: StructAbi(frozenset(module.abilities.get(name, ())),
                                      _named([f"{n}: {t}" for n, t in fields]))
        for name, fields in module.structs.items()
    }
    structs.update({name: StructAbi(frozenset({"copy", "drop"}), _named([f"{n}: {t}" for n, t in fields]))
                    for name, fields in module.events.items()})
    return ModuleAbi(module.name, functions, dict(module.aborts), structs)


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", "", text)


def _item_end(text: str, start: int) -> int:
    """End (exclusive) of the item starting at ``start``: its ``;`` or its balanced ``{…}``."""
    depth = 0
    for i in range(start, len(text)):
        char = text[i]
        if char == ";" and depth == 0:
            return i + 1
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def _strip_test_only(text: str) -> str:
    while (match := re.search(r"#\[test_only\]", text)) is not None:
        text = text[: match.start()] + text[_item_end(text, match.end()):]
    return re.sub(r"#\[[^\]]*\]", "", text)


_FUNCTION = re.compile(r"(?P<vis>(?:public(?:\s*\(\s*\w+\s*\))?\s+)?(?:entry\s+)?)fun\s+(?P<name>\w+)\s*"
                       r"(?P<tparams><[^>]*>)?\s*\(")
_STRUCT = re.compile(r"public\s+struct\s+(?P<name>\w+)\s*(?P<tparams><[^>]*>)?\s*has\s+(?P<abilities>[\w\s,]+?)\s*\{"
                     r"(?P<fields>[^}]*)\}")
_ABORT = re.compile(r"const\s+(?P<name>E[A-Z][a-z]\w*)\s*:\s*u64\s*=\s*(?P<code>[0-9_]+)\s*;")


def _balanced(text: str, open_at: int) -> int:
    """Index just after the parenthesis closing the one at ``open_at``."""
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i + 1
    raise ValueError("unbalanced parentheses in Move source")


def from_source(text: str) -> ModuleAbi:
    """The ABI a Move source file declares (test-only items excluded)."""
    text = _strip_test_only(_strip_comments(text))
    module = re.search(r"\bmodule\s+\w+::(\w+)", text)
    if module is None:
        raise ValueError("no module declaration")
    functions = {}
    for match in _FUNCTION.finditer(text):
        visibility = " ".join(match.group("vis").split())
        if not visibility or visibility.startswith(("public(", "public (")):
            continue  # private helpers and public(package) functions are not callable from a PTB
        close = _balanced(text, match.end() - 1)
        params = split_top_level(text[match.end(): close - 1])
        tail = text[close: text.index("{", close)].strip()
        returns: tuple[str, ...] = ()
        if tail.startswith(":"):
            ret = tail[1:].strip()
            items = split_top_level(ret[1:-1]) if ret.startswith("(") else [ret]
            returns = tuple(normalize_type(r) for r in items)
        functions[match.group("name")] = FunctionAbi(visibility, _type_param_names(match.group("tparams")),
                                                     _named(params), returns)
    aborts = {m.group("name"): int(m.group("code").replace("_", "")) for m in _ABORT.finditer(text)}
    structs = {
        m.group("name"): StructAbi(
            frozenset(a.strip() for a in m.group("abilities").split(",")),
            _named(split_top_level(m.group("fields"))),
        )
        for m in _STRUCT.finditer(text)
    }
    return ModuleAbi(module.group(1), functions, aborts, structs)
