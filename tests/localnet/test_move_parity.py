"""The stand-in's handler tables against move/sources: functions, parameters, aborts, structs/events."""

from __future__ import annotations

from pathlib import Path

import pytest

from k3sdaas_localnet.sui import abi
from k3sdaas_localnet.sui.handlers.base import MoveModule
from k3sdaas_localnet.sui.packages import K3S_DAAS_MODULES

SOURCES = Path(__file__).resolve().parents[2] / "move" / "sources"


def source_abi(module: MoveModule) -> abi.ModuleAbi:
    path = SOURCES / f"{module.name}.move"
    assert path.exists(), f"{path} is missing; the stand-in mirrors it"
    return abi.from_source(path.read_text())


@pytest.mark.parametrize("module", K3S_DAAS_MODULES, ids=lambda m: m.name)
def test_functions_match_the_sources(module: MoveModule) -> None:
    source, handlers = source_abi(module), abi.from_handlers(module)
    assert source.name == module.name
    assert sorted(handlers.functions) == sorted(source.functions), "public/entry function set differs"
    for name, declared in source.functions.items():
        assert handlers.functions[name] == declared, f"{module.name}::{name} signature differs"


@pytest.mark.parametrize("module", K3S_DAAS_MODULES, ids=lambda m: m.name)
def test_abort_codes_match_the_sources(module: MoveModule) -> None:
    assert abi.from_handlers(module).aborts == source_abi(module).aborts


@pytest.mark.parametrize("module", K3S_DAAS_MODULES, ids=lambda m: m.name)
def test_structs_and_events_match_the_sources(module: MoveModule) -> None:
    source, handlers = source_abi(module), abi.from_handlers(module)
    assert sorted(handlers.structs) == sorted(source.structs), "struct/event set differs"
    for name, declared in source.structs.items():
        assert handlers.structs[name] == declared, f"{module.name}::{name} layout or abilities differ"


def test_the_parser_sees_drift() -> None:
    """Edits to a source must change its ABI, or the tests above could pass vacuously."""
    text = (SOURCES / "staking.move").read_text()
    base = abi.from_source(text)
    assert base.functions and base.aborts and base.structs
    edits = {
        "abort code": text.replace("const EStakeTooLow: u64 = 1;", "const EStakeTooLow: u64 = 99;"),
        "parameter": text.replace("node_id: vector<u8>,\n    owner: address,",
                                  "node_id: vector<u8>,\n    owner: ID,", 1),
        "event field": text.replace("public struct SealMinted has copy, drop {\n    token_id: ID,",
                                    "public struct SealMinted has copy, drop {\n    token: ID,"),
    }
    for what, edited in edits.items():
        assert edited != text, f"edit for {what} did not apply; update this test"
        assert abi.from_source(edited) != base, what


def test_test_only_and_package_functions_are_not_part_of_the_abi() -> None:
    staking = abi.from_source((SOURCES / "staking.move").read_text())
    assert "init_for_testing" not in staking.functions
    assert "apply_slash" not in staking.functions and "open_record" not in staking.functions
