"""move/README.md is the ABI contract: its tables must say exactly what the Move sources declare.

Nothing compiles Move on these machines, and the local Sui node stand-in is written from the README,
so a drift between the two would only show up on a real chain. These tests read both and compare
function parameter lists, abort constant names and codes, event and object structs (fields in
order, abilities) and that no public function goes undocumented.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "move" / "README.md"
SOURCES = REPO / "move" / "sources"


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Splits on `sep` outside <...> and (...), dropping empty parts (trailing commas)."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "<(":
            depth += 1
        elif char in ">)":
            depth -= 1
        if char == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [" ".join(part.split()) for part in parts if part.strip()]


def normalise_fields(text: str) -> list[str]:
    # "a: T" with single spaces, so README and source spellings compare equal.
    return [re.sub(r"\s*:\s*", ": ", part) for part in split_top_level(text)]


# --- the Move sources ------------------------------------------------------------------------------


@dataclass
class MoveModule:
    name: str
    functions: dict[str, list[str]] = field(default_factory=dict)  # public, not test-only
    errors: dict[str, int] = field(default_factory=dict)
    structs: dict[str, tuple[set[str], list[str]]] = field(default_factory=dict)
    emitted: set[str] = field(default_factory=set)


_FUNCTION = re.compile(r"((?:#\[[^\]]*\]\s*)*)public fun (\w+)\s*(?:<[^(]*>)?\s*\((.*?)\)", re.DOTALL)
_STRUCT = re.compile(r"public struct (\w+)(?:<[^>{]*>)?\s*(?:has ([\w, ]+?))?\s*\{(.*?)\}", re.DOTALL)
_ERROR = re.compile(r"const (E[A-Z][a-z]\w*): u64 = (\d+);")
_EMIT = re.compile(r"event::emit\((\w+) \{")


def parse_module(path: Path) -> MoveModule:
    text = re.sub(r"//[^\n]*", "", path.read_text())
    module = MoveModule(re.search(r"module k3s_daas::(\w+);", text)[1])  # type: ignore[index]
    for attributes, name, params in _FUNCTION.findall(text):
        if "test_only" not in attributes:
            module.functions[name] = normalise_fields(params)
    module.errors = {name: int(code) for name, code in _ERROR.findall(text)}
    for name, abilities, body in _STRUCT.findall(text):
        module.structs[name] = ({a.strip() for a in abilities.split(",") if a.strip()}, normalise_fields(body))
    module.emitted = set(_EMIT.findall(text))
    return module


@pytest.fixture(scope="module")
def modules() -> dict[str, MoveModule]:
    parsed = [parse_module(path) for path in sorted(SOURCES.glob("*.move"))]
    return {module.name: module for module in parsed}


# --- the README ------------------------------------------------------------------------------------


@dataclass
class FunctionRow:
    module: str
    name: str
    params: list[str]
    aborts: dict[str, int]
    events: list[str]


@dataclass
class StructSpec:
    module: str
    name: str
    abilities: set[str] | None  # None: the README does not state them
    fields: list[str]


_SECTION = re.compile(r"^## Module `k3s_daas::(\w+)`", re.MULTILINE)
_ROW = re.compile(r"^\| `(\w+)` \| `([^`]*)` \| (.*) \| (.*) \|$", re.MULTILINE)
_ABORT = re.compile(r"`(E\w+)` \((\d+)\)")
_SPEC = re.compile(r"`(\w+)(?:<[^`>]*>)?(?: has ([\w, ]+))? \{ ([^`{}]*) \}`")


def readme_sections() -> dict[str, str]:
    text = README.read_text()
    starts = list(_SECTION.finditer(text))
    return {
        match[1]: text[match.end() : starts[i + 1].start() if i + 1 < len(starts) else len(text)]
        for i, match in enumerate(starts)
    }


def readme_rows() -> list[FunctionRow]:
    return [
        FunctionRow(
            module,
            row[1],
            normalise_fields(row[2]),
            {name: int(code) for name, code in _ABORT.findall(row[3])},
            re.findall(r"`(\w+)`", row[4]),
        )
        for module, section in readme_sections().items()
        for row in _ROW.finditer(section)
    ]


def readme_specs() -> list[StructSpec]:
    return [
        StructSpec(
            module,
            spec[1],
            {a.strip() for a in spec[2].split(",")} if spec[2] else None,
            normalise_fields(spec[3]),
        )
        for module, section in readme_sections().items()
        for spec in _SPEC.finditer(section)
    ]


def row_id(row: FunctionRow) -> str:
    return f"{row.module}::{row.name}"


# --- tests -----------------------------------------------------------------------------------------


def test_the_readme_documents_three_modules_and_their_tables() -> None:
    assert set(readme_sections()) == {"staking", "registry", "k8s_gateway"}
    assert len(readme_rows()) == 13


@pytest.mark.parametrize("row", readme_rows(), ids=row_id)
def test_function_exists_with_the_documented_parameters(row: FunctionRow, modules: dict[str, MoveModule]) -> None:
    functions = modules[row.module].functions
    assert row.name in functions, f"{row_id(row)} is in the README but not a public function"
    assert functions[row.name] == row.params


@pytest.mark.parametrize("row", readme_rows(), ids=row_id)
def test_documented_aborts_are_the_module_constants(row: FunctionRow, modules: dict[str, MoveModule]) -> None:
    for name, code in row.aborts.items():
        # An abort raised by a callee (slash_by_enclave -> staking) is that module's constant.
        owner = row.module if name in modules[row.module].errors else None
        owner = owner or next((m.name for m in modules.values() if name in m.errors), None)
        assert owner, f"{row_id(row)}: no constant {name}"
        assert modules[owner].errors[name] == code, f"{row_id(row)}: {name} ({code}) vs {owner}"


@pytest.mark.parametrize("row", readme_rows(), ids=row_id)
def test_documented_events_are_event_structs(row: FunctionRow, modules: dict[str, MoveModule]) -> None:
    for event in row.events:
        owners = [m for m in modules.values() if event in m.structs]
        assert owners, f"{row_id(row)}: no struct {event}"
        abilities, _ = owners[0].structs[event]
        assert abilities == {"copy", "drop"}, event
        # Sui only lets a module emit its own event types.
        assert event in owners[0].emitted, f"{event} is never emitted by {owners[0].name}"


@pytest.mark.parametrize("spec", readme_specs(), ids=lambda spec: f"{spec.module}::{spec.name}")
def test_documented_structs_match_the_sources(spec: StructSpec, modules: dict[str, MoveModule]) -> None:
    structs = modules[spec.module].structs
    assert spec.name in structs, f"{spec.module}::{spec.name} not declared"
    abilities, fields = structs[spec.name]
    if spec.abilities is not None:
        assert abilities == spec.abilities
    if all(":" in f for f in spec.fields):
        assert fields == spec.fields
    else:  # the README names the fields only
        assert [f.split(":")[0] for f in fields] == spec.fields


def test_every_error_constant_is_documented_with_its_code(modules: dict[str, MoveModule]) -> None:
    text = README.read_text()
    for module in modules.values():
        for name, code in module.errors.items():
            assert f"`{name}` ({code})" in text, f"{module.name}::{name} ({code}) missing from README"


def test_every_public_function_is_documented(modules: dict[str, MoveModule]) -> None:
    text = README.read_text()
    for module in modules.values():
        for name in module.functions:
            assert re.search(rf"`{name}[`(<]", text), f"{module.name}::{name} is public but not in README"


def test_every_emitted_event_is_declared_in_the_emitting_module(modules: dict[str, MoveModule]) -> None:
    for module in modules.values():
        for event in module.emitted:
            assert event in module.structs, f"{module.name} emits {event}, declared elsewhere"


def test_parser_reads_generic_fields_and_trailing_commas() -> None:
    assert normalise_fields("a: Table<ID, X>,\n  b : u64,\n") == ["a: Table<ID, X>", "b: u64"]


# --- the Move unit tests cover the whole ABI --------------------------------------------------------

MOVE_TESTS = REPO / "move" / "tests"


def move_test_text() -> str:
    return "\n".join(path.read_text() for path in sorted(MOVE_TESTS.glob("*.move")))


def test_every_abort_constant_has_an_expected_failure_test(modules: dict[str, MoveModule]) -> None:
    expected = set(re.findall(r"expected_failure\(abort_code = k3s_daas::(\w+)::(E\w+)\)", move_test_text()))
    for module in modules.values():
        for name in module.errors:
            assert (module.name, name) in expected, f"no #[expected_failure] test for {module.name}::{name}"


@pytest.mark.parametrize("row", readme_rows(), ids=row_id)
def test_every_entry_function_is_called_by_a_move_test(row: FunctionRow) -> None:
    text = move_test_text()
    assert re.search(rf"(::|\.){row.name}\(", text), f"no Move test calls {row_id(row)}"
