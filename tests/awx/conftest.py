"""The AWX definitions under awx/: their generator is a script, loaded here as a module."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from helpers.playbook import REPO


@pytest.fixture(scope="session")
def surveys() -> ModuleType:
    spec = importlib.util.spec_from_file_location("awx_surveys", REPO / "awx" / "surveys.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
