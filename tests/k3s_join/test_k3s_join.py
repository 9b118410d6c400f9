"""k3s_join through ansible-playbook on localhost, against a real master: attestation first, then seal proof,
register-worker, the agent's files; idempotence, check mode, diff, and every refusal named."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from nautilus.conftest import IMAGE_PCRS, Chain, Master
from nautilus.test_workers import kube_get

from helpers.playbook import PlaybookRun, run_playbook
from k3sdaas.agent.join import short_token_id
from k3sdaas.agent.master import ensure_node_key
from k3sdaas.chain import Signer
from k3sdaas_localnet.nitro.pki import SimulatedPki


def join(tmp: Path, master: Master, nsm: tuple[str, SimulatedPki], token_id: str, node_id: str, *,
         check: bool = False, diff: bool = False, **options: Any) -> PlaybookRun:
    root = tmp / "root.pem"
    root.write_bytes(nsm[1].root_pem())
    args = {"master_url": master.url, "token_id": token_id, "node_id": node_id, "key_file": str(tmp / "node.key"),
            "config_dir": str(tmp / "k3s"), "env_file": str(tmp / "k3s-agent.env"), "manage_service": False,
            "attestation_root": str(root), "node_taints": ["k3sdaas.io/test=yes:NoSchedule"],
            "expected_pcrs": {f"pcr{i}": value.hex() for i, value in enumerate(IMAGE_PCRS)}, **options}
    playbook = tmp / "join.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "join", "k3sdaas.core.k3s_join": args, "register": "joined"}]}]))
    return run_playbook(playbook, local=True, check=check, diff=diff)


def result(run: PlaybookRun) -> dict[str, Any]:
    return next(run.results())[1]


def node_key(tmp: Path) -> Signer:
    """The node key made the way the module makes it, so that the token can be staked with it as owner."""
    return ensure_node_key(tmp / "node.key")[0]


def audit_paths(master: Master, since: int) -> list[str]:
    """The paths of the requests the master's audit log (one JSON record per request) recorded after line ``since``."""
    time.sleep(0.5)  # the log is flushed every 0.2 s
    lines = (master.state / "audit.log").read_text().splitlines()[since:]
    return [json.loads(line)["path"] for line in lines]


def audit_size(master: Master) -> int:
    time.sleep(0.5)
    path = master.state / "audit.log"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_join_registers_writes_the_files_and_the_stand_in_node_becomes_ready(
        tmp_path: Path, master: Master, chain: Chain, nsm_socket: tuple[str, SimulatedPki], kube: Path) -> None:
    owner = node_key(tmp_path)
    address = owner.address
    _, token = chain.stake(2, owner=owner)
    first = join(tmp_path, master, nsm_socket, token.token_id, token.node_id)
    joined = result(first)
    assert first.returncode == 0, first.output
    assert joined["changed"] is True and joined["registration"]["registered_now"] is True
    assert joined["tier"] == "developer" and joined["node_address"] == address
    assert joined["pcrs"] == {str(i): v.hex() for i, v in enumerate(IMAGE_PCRS)}
    assert stat.S_IMODE((tmp_path / "node.key").stat().st_mode) == 0o600
    env_file = tmp_path / "k3s-agent.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert env_file.read_text().startswith("K3S_TOKEN=K10")
    assert env_file.read_text().strip()[len("K3S_TOKEN="):] not in first.output  # no_log / never echoed
    config = yaml.safe_load((tmp_path / "k3s" / "config.yaml").read_text())
    assert config["node-name"] == token.node_id
    assert sorted(config["node-label"]) == ["k3sdaas.io/pool=default", "k3sdaas.io/tier=developer",
                                            f"k3sdaas.io/token-id={short_token_id(token.token_id)}"]
    assert config["node-taint"] == ["k3sdaas.io/test=yes:NoSchedule"]

    # The stand-in K3s agent joins with exactly these files; the node turns Ready with the labels.
    agent = subprocess.Popen([sys.executable, "-m", "k3sdaas_localnet.k3s", "agent", "--config",
                              str(tmp_path / "k3s" / "config.yaml"), "--data-dir", str(tmp_path / "data")],
                             env={**os.environ, "K3S_TOKEN": env_file.read_text().strip().split("=", 1)[1]},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, node, ready = time.time() + 30, None, False
        while time.time() < deadline and not ready:
            response = kube_get(kube, f"/api/v1/nodes/{token.node_id}")
            if response.status_code == 200:
                node = response.json()
                ready = any(c["type"] == "Ready" and c["status"] == "True"
                            for c in node.get("status", {}).get("conditions", []))
            time.sleep(0.3)
        assert node is not None and ready, agent.stderr.read() if agent.poll() is not None and agent.stderr else node
        assert node["metadata"]["labels"]["k3sdaas.io/tier"] == "developer"
        assert node["metadata"]["labels"]["k3sdaas.io/token-id"] == short_token_id(token.token_id)
    finally:
        agent.terminate()
        agent.wait(10)

    # Second run: registered, unchanged, so no change and no new join token.
    before = env_file.read_text()
    second = join(tmp_path, master, nsm_socket, token.token_id, token.node_id)
    assert second.returncode == 0, second.output
    assert result(second)["changed"] is False and result(second)["registration"]["registered_now"] is False
    assert env_file.read_text() == before

    # A changed taint: check mode predicts the change with a diff and writes nothing; the real run applies it.
    checked = join(tmp_path, master, nsm_socket, token.token_id, token.node_id, check=True, diff=True,
                   node_taints=["k3sdaas.io/test=no:NoExecute"])
    assert checked.returncode == 0, checked.output
    assert result(checked)["changed"] is True
    assert "k3sdaas.io/test=no:NoExecute" in result(checked)["diff"]["after"]
    assert env_file.read_text() == before
    applied = join(tmp_path, master, nsm_socket, token.token_id, token.node_id,
                   node_taints=["k3sdaas.io/test=no:NoExecute"])
    assert result(applied)["changed"] is True and result(applied)["registration"]["registered_now"] is True
    assert env_file.read_text() != before


def test_a_wrong_pcr_fails_naming_it_before_any_signed_request(
        tmp_path: Path, master: Master, chain: Chain, nsm_socket: tuple[str, SimulatedPki]) -> None:
    owner = node_key(tmp_path)
    _, token = chain.stake(1, owner=owner)
    seen = audit_size(master)
    wrong = "ab" * 48
    run = join(tmp_path, master, nsm_socket, token.token_id, token.node_id,
               expected_pcrs={"pcr0": IMAGE_PCRS[0].hex(), "pcr1": IMAGE_PCRS[1].hex(), "pcr2": wrong})
    failed = result(run)
    assert run.returncode != 0
    assert failed["field"] == "pcr2" and failed["error_type"] == "AttestationMismatch"
    assert f"PCR2 is {IMAGE_PCRS[2].hex()}, expected {wrong}" in failed["msg"]
    assert "Traceback" not in run.output
    assert not (tmp_path / "k3s" / "config.yaml").exists()
    # The master's audit log saw the attestation request and nothing after it: no challenge, no signed proof.
    assert audit_paths(master, seen) == ["/api/v1/attestation"]


def test_an_expired_token_is_named(tmp_path: Path, master: Master, chain: Chain,
                                   nsm_socket: tuple[str, SimulatedPki]) -> None:
    owner = node_key(tmp_path)
    chain.call(chain.operator, "configure_pool", 1000)  # tokens staked now live one second
    try:
        _, token = chain.stake(1, owner=owner)
    finally:
        chain.call(chain.operator, "configure_pool", 30 * 86400 * 1000)
    time.sleep(2)
    run = join(tmp_path, master, nsm_socket, token.token_id, token.node_id)
    failed = result(run)
    assert run.returncode != 0
    assert "token_expired" in failed["msg"] and "expired" in failed["msg"] and failed["field"] == "token_id"


def test_an_unreachable_master_and_missing_k3s_fail_clearly(tmp_path: Path, master: Master, chain: Chain,
                                                            nsm_socket: tuple[str, SimulatedPki]) -> None:
    token_id = "0x" + "1" * 64
    predicted = join(tmp_path, master, nsm_socket, token_id, "n1", check=True)  # check mode creates no key
    assert predicted.returncode == 0 and result(predicted)["changed"] is True, predicted.output
    assert not (tmp_path / "node.key").exists()
    unreachable = join(tmp_path, master, nsm_socket, token_id, "n1", master_url="https://127.0.0.1:1")
    assert unreachable.returncode != 0
    assert "unreachable" in result(unreachable)["msg"] and result(unreachable)["field"] == "master_url"
    assert result(unreachable)["key_created"] is True  # made on the node, before anything is sent
    assert stat.S_IMODE((tmp_path / "node.key").stat().st_mode) == 0o600
    missing = join(tmp_path, master, nsm_socket, token_id, "n1", manage_service=True,
                   k3s_binary=str(tmp_path / "no-k3s"))
    assert result(missing)["error_type"] == "K3sMissing" and "K3s is missing" in result(missing)["msg"]
    with httpx.Client(verify=False) as client:  # nothing was sent to the master for this one
        assert client.get(f"{master.url}/health").status_code == 200
