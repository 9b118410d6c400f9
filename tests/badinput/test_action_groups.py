"""module_defaults per action group: the Sui connection reaches the Sui modules only, so nitro_enclave keeps
working beside them, and group/k3sdaas.core.aws carries the AWS connection to amazon.aws's modules too."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from helpers.playbook import run_playbook

from .conftest import Chain

SIM = [sys.executable, "-m", "k3sdaas_localnet.nitro.cli"]


@pytest.mark.slow
def test_module_defaults_per_group(chain: Chain, ec2_endpoint: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SUI_RPC_URL", "SUI_KEY_FILE", "SUI_PRIVATE_KEY", "SUI_CA_FILE", "K3SDAAS_PACKAGE_ID"):
        monkeypatch.delenv(name, raising=False)
    sui = {"rpc_url": chain.node.url, "ca_file": str(chain.node.ca_path), "key_file": str(chain.key_file),
           "package_id": chain.deployment.package_id}
    aws = {"region": "us-east-1", "endpoint_url": ec2_endpoint, "access_key": "testing", "secret_key": "testing"}
    play = [{
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {"group/k3sdaas.core.sui": sui, "group/k3sdaas.core.nitro": {"nitro_cli": SIM},
                            "group/k3sdaas.core.aws": aws},
        "tasks": [
            {"name": "sui", "k3sdaas.core.seal_token": {"node_id": chain.staked_node}},
            {"name": "nitro", "k3sdaas.core.nitro_enclave": {"state": "absent", "eif_path": str(tmp_path / "x.eif")}},
            {"name": "aws", "k3sdaas.core.ec2_enclave_instance": {"state": "absent", "name": "x", "cluster": "x",
                                                                  "wait": False}},
            {"name": "amazon.aws", "amazon.aws.ec2_instance_info": {}},  # through metadata.extend_group
        ],
    }]
    playbook = tmp_path / "groups.yml"
    playbook.write_text(json.dumps(play))
    run = run_playbook(playbook, local=True, env={"K3SDAAS_NITRO_SIM_STATE": str(tmp_path / "sim")})
    results = dict(run.results())
    assert run.returncode == 0, run.first_failure()
    assert results["sui"]["exists"] is True and results["sui"]["valid"] is True
    assert results["nitro"]["changed"] is False
    assert results["aws"]["instance_ids"] == []
    assert results["amazon.aws"]["instances"] == []
