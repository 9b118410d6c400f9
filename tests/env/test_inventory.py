"""inventories/local parses and has the shape the playbooks rely on."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the fixture's class; pytest's importlib mode cannot import conftest at run time
    from conftest import EnvTools


@pytest.fixture(scope="module")
def inventory(env_tools: EnvTools) -> dict[str, Any]:
    result = env_tools.run([env_tools.venv_bin / "ansible-inventory", "-i", "inventories/local", "--list"])
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_one_master_and_two_workers_under_k3sdaas_nodes(inventory: dict[str, Any]) -> None:
    assert inventory["k3sdaas_master"]["hosts"] == ["k3sdaas-master-1"]
    assert sorted(inventory["k3sdaas_workers"]["hosts"]) == ["k3sdaas-worker-1", "k3sdaas-worker-2"]
    assert sorted(inventory["k3sdaas_nodes"]["children"]) == ["k3sdaas_master", "k3sdaas_workers"]


def test_nodes_are_reached_through_docker_and_localhost_runs_locally(inventory: dict[str, Any]) -> None:
    hostvars = inventory["_meta"]["hostvars"]
    nodes = inventory["k3sdaas_master"]["hosts"] + inventory["k3sdaas_workers"]["hosts"]
    assert {hostvars[node]["ansible_connection"] for node in nodes} == {"docker"}
    assert hostvars["localhost"]["ansible_connection"] == "local"


def test_inventory_declares_local_infrastructure(inventory: dict[str, Any]) -> None:
    hostvars = inventory["_meta"]["hostvars"]
    assert {vars_["k3sdaas_infrastructure"] for vars_ in hostvars.values()} == {"local"}
