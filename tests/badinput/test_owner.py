"""Security: sui_stake never tops up (or stakes into) a token that another address owns, whether or not
``owner`` is set, in check mode as in a real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.playbook import run_playbook
from helpers.sui import no_transaction_reaches

from .conftest import SUI, Chain, new_signer


@pytest.mark.slow
@pytest.mark.parametrize("check", [False, True])
def test_another_signer_cannot_top_up_a_token(chain: Chain, tmp_path: Path, check: bool,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SUI_RPC_URL", "SUI_KEY_FILE", "SUI_PRIVATE_KEY", "SUI_CA_FILE", "K3SDAAS_PACKAGE_ID"):
        monkeypatch.delenv(name, raising=False)
    intruder = new_signer()
    chain.node.faucet(intruder.address, 100 * SUI)
    key = tmp_path / "intruder.key"
    key.write_text(intruder.keystring)
    key.chmod(0o600)
    common = {"rpc_url": chain.node.url, "ca_file": str(chain.node.ca_path), "key_file": str(key),
              "package_id": chain.deployment.package_id, "node_id": chain.staked_node, "amount": 5}
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "no owner", "k3sdaas.core.sui_stake": common, "ignore_errors": True},
        {"name": "own address", "k3sdaas.core.sui_stake": dict(common, owner=intruder.address),
         "ignore_errors": True},
    ]}]
    playbook = tmp_path / "intrude.yml"
    playbook.write_text(json.dumps(play))
    before = chain.snapshot()
    with no_transaction_reaches(chain.node):
        run = run_playbook(playbook, local=True, check=check)
    for name, result in run.results():
        assert result.get("failed") is True, (name, result)
        assert result["field"] == "owner" and f"owned by {chain.operator.address}" in result["msg"], result
    assert chain.snapshot() == before
