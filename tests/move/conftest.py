"""Shared helpers for the Move package's Python-side tests."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MOVE_DIR = REPO / "move"

Constants = dict[str, int | bytes]

_CONST = re.compile(r"const\s+(\w+)\s*:\s*([\w<>]+)\s*=\s*(.*?);", re.DOTALL)


def parse_move_value(literal: str) -> int | bytes:
    """A Move literal as Python: x"hex" and b"text" as bytes, @0x.. as 32 bytes, numbers as int."""
    literal = literal.strip()
    if literal.startswith('x"'):
        return bytes.fromhex(literal[2:-1])
    if literal.startswith('b"'):
        return literal[2:-1].encode()
    if literal.startswith("@0x"):
        return bytes.fromhex(literal[3:].rjust(64, "0"))
    return int(literal.replace("_", ""))


def parse_move_constants(text: str) -> Constants:
    return {m[1]: parse_move_value(m[3]) for m in _CONST.finditer(text)}


@pytest.fixture(scope="session")
def move_dir() -> Path:
    return MOVE_DIR


@pytest.fixture(scope="session")
def move_constants() -> Callable[[str], Constants]:
    """Parses the `const` declarations of Move source text."""
    return parse_move_constants
