"""The project's strategy (ansible.cfg): Mitogen's linear strategy when Mitogen is installed, Ansible's otherwise."""

from __future__ import annotations

import configparser
import importlib.util
import sys
from types import ModuleType

import pytest
from ansible.plugins.strategy.linear import StrategyModule as Linear

from helpers.playbook import REPO

SHIM = REPO / "ansible_plugins" / "strategy" / "accelerated_linear.py"


def load_shim() -> ModuleType:
    spec = importlib.util.spec_from_file_location("accelerated_linear_under_test", SHIM)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ansible_cfg_selects_the_shim() -> None:
    config = configparser.ConfigParser()
    config.read(REPO / "ansible.cfg")
    assert config["defaults"]["strategy"] == SHIM.stem
    assert (REPO / config["defaults"]["strategy_plugins"] / SHIM.name).resolve() == SHIM


def test_mitogen_carries_the_linear_strategy_when_installed() -> None:
    import ansible_mitogen.strategy

    strategy = load_shim().StrategyModule
    assert issubclass(strategy, ansible_mitogen.strategy.StrategyMixin) and issubclass(strategy, Linear)


def test_without_mitogen_it_is_ansibles_linear_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in sys.modules if name.startswith("ansible_mitogen")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ansible_mitogen", None)  # import fails, as where it is not installed
    assert load_shim().StrategyModule is Linear
