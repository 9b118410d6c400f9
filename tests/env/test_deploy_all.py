"""playbooks/deploy-all.yml on the local inventory converges and a second run changes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import yaml

from helpers.playbook import run_playbook

if TYPE_CHECKING:  # the fixture's class; pytest's importlib mode cannot import conftest at run time
    from conftest import EnvTools

pytestmark = pytest.mark.docker


def test_second_deploy_changes_nothing_and_nodes_know_their_role(env_tools: EnvTools, docker_engine: None) -> None:
    env_tools.run_playbook("playbooks/deploy-all.yml")
    second = env_tools.run_playbook("playbooks/deploy-all.yml")
    assert {host: stats["changed"] for host, stats in second.items()} == dict.fromkeys(second, 0)
    assert not any(stats["failures"] or stats["unreachable"] for stats in second.values())

    expected = {"k3sdaas-master-1": "master", "k3sdaas-worker-1": "worker", "k3sdaas-worker-2": "worker"}
    assert expected.keys() <= second.keys()
    for node, role in expected.items():
        identity = env_tools.run(["docker", "exec", node, "cat", "/etc/k3sdaas/node.yml"]).stdout
        assert yaml.safe_load(identity) == {"node_id": node, "role": role}


def test_deploy_refuses_an_unknown_infrastructure(env_tools: EnvTools) -> None:
    result = run_playbook("playbooks/deploy-all.yml", extra_vars={"k3sdaas_infrastructure": "gcp"}, json_report=False)
    assert result.returncode != 0
    assert "k3sdaas_infrastructure must be 'local' or 'aws'" in result.stdout
