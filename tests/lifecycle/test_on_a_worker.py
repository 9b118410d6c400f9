"""The steps that run on a worker, on a systemd container from k3sdaas-base prepared by role worker_node: a token
owned by the node's own key is refreshed and unstaked there (only the owner can), upgrade cordons, drains,
upgrades and uncordons the node, and unstake stops and removes the K3s agent. The container uses the host
network so it reaches this module's private Sui node and Kubernetes stand-in."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from helpers.playbook import REPO, run_playbook
from k3sdaas.nautilus.kube import JoinTokens

from .conftest import SUI, Cluster, changed, summary

DAY_MS = 86_400_000
SYSTEMD_FLAGS = ["--cap-add", "SYS_ADMIN", "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
                 "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--cgroupns=host"]


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=check)


@pytest.fixture
def worker(cluster: Cluster) -> Iterator[str]:
    name = f"k3sdaas-lifecycle-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--name", name, "--network", "host", *SYSTEMD_FLAGS, "k3sdaas-base:latest")
    try:
        docker("exec", name, "timeout", "60", "sh", "-c",
               "until systemctl is-system-running 2>/dev/null | grep -qE 'running|degraded'; do sleep 1; done")
        docker("cp", str(cluster.node.ca_path), f"{name}:/etc/ssl/sui-ca.pem")
        # The image ships no package lists but a fresh apt stamp, so apt's cache_valid_time would not update them.
        docker("exec", name, "apt-get", "update", "-qq")
        yield name
    finally:
        docker("rm", "-f", name, check=False)


def wait_for_node(cluster: Cluster, name: str, version: str) -> dict[str, Any]:
    """The Node once it is Ready with kubelet ``version``."""
    deadline = time.monotonic() + 60
    while True:
        status, node = cluster.kube.call("GET", f"/api/v1/nodes/{name}")
        info = node.get("status", {}) if status == 200 else {}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in info.get("conditions", []))
        if ready and info.get("nodeInfo", {}).get("kubeletVersion") == version:
            return node  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"node {name} not Ready with {version}: {node}"
        time.sleep(0.5)


def wait_for_pod(cluster: Cluster, node: str) -> str:
    """The name of the web pod running on ``node``."""
    deadline = time.monotonic() + 60
    while True:
        pods = cluster.kube.call("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb")[1]["items"]
        running = [p["metadata"]["name"] for p in pods
                   if p["spec"].get("nodeName") == node and p.get("status", {}).get("phase") == "Running"]
        if running:
            return running[0]  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"no web pod running on {node}: {pods}"
        time.sleep(0.5)


@pytest.mark.docker
@pytest.mark.slow
def test_node_key_tokens_are_handled_on_the_node(cluster: Cluster, worker: str,
                                                  node_ids: Callable[[int], list[str]]) -> None:
    inventory = cluster.inventory(
        {worker: {"ansible_connection": "docker", "ansible_python_interpreter": "/usr/bin/python3",
                  "worker_node_sui_rpc_url": cluster.node.url, "worker_node_sui_ca_file": "/etc/ssl/sui-ca.pem",
                  "k3s_simulated": True}},
        k3sdaas_operator_node_id=node_ids(1)[0])
    prepared = run_playbook(REPO / "tests" / "lifecycle" / "prepare_node.yml", inventory=str(inventory), timeout=600)
    assert prepared.returncode == 0, prepared.output
    address = json.loads(docker("exec", worker, "/opt/k3sdaas/venv/bin/k3sdaas-agent", "key", "--file",
                                "/etc/k3sdaas/node.key").stdout)["address"]
    cluster.node.faucet(address, 10 * SUI)  # the node key pays the gas of what it signs

    # Staked by the operator for the node's key, under a short TTL so that the token is due for a refresh.
    cluster.chain(lambda c: c.configure_pool(token_ttl_ms=2 * DAY_MS))
    token = cluster.chain(lambda c: c.stake(worker, 2 * SUI, owner=address))
    cluster.chain(lambda c: c.configure_pool(token_ttl_ms=30 * DAY_MS))

    rotated = cluster.run("rotate-seal-tokens", inventory, rotate_seal_tokens_nodes=[worker])
    assert changed(rotated) == 1, rotated.output
    assert summary(rotated)["nodes"][worker] | {"expires_at": None, "days_left": None} == {
        "token_id": token.token_id, "owner": "node key", "tier": "developer", "refreshed": True,
        "expires_at": None, "days_left": None}
    assert cluster.token(worker).expires_at_ms - token.expires_at_ms > 27 * DAY_MS
    assert changed(cluster.run("rotate-seal-tokens", inventory, rotate_seal_tokens_nodes=[worker])) == 0

    # The K3s agent joined (v1.31.12+k3s1, the default), one pod on it; then the upgrade to v1.32.8+k3s1.
    join = asyncio.run(JoinTokens(str(cluster.kube.kubeconfig), str(cluster.kube.state / "ca.pem"), 3600)
                       .create(worker)).token
    joined = run_playbook(REPO / "tests" / "lifecycle" / "join_agent.yml", inventory=str(inventory),
                          extra_vars={"k3s_agent_server": cluster.kube.url, "k3s_agent_token": join})
    assert joined.returncode == 0, joined.output
    wait_for_node(cluster, worker, "v1.31.12+k3s1")
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    assert cluster.kube.call("POST", "/apis/apps/v1/namespaces/default/deployments", deployment)[0] == 201
    pod = wait_for_pod(cluster, worker)

    upgraded = cluster.run("upgrade", inventory, upgrade_k3s_version="v1.32.8+k3s1")
    assert upgraded.returncode == 0, upgraded.output
    assert summary(upgraded)["workers"] == {worker: {"k3s_before": "v1.31.12+k3s1", "upgraded": True,
                                                     "cordoned_and_drained": True}}
    node = wait_for_node(cluster, worker, "v1.32.8+k3s1")
    assert not node["spec"].get("unschedulable")  # uncordoned
    assert cluster.kube.call("GET", f"/api/v1/namespaces/default/pods/{pod}")[0] == 404  # evicted by the drain
    assert wait_for_pod(cluster, worker) != pod  # its replacement, scheduled once the node was uncordoned
    assert "v1.32.8+k3s1" in docker("exec", worker, "/usr/local/bin/k3s", "--version").stdout
    assert changed(cluster.run("upgrade", inventory, upgrade_k3s_version="v1.32.8+k3s1")) == 0

    assert docker("exec", worker, "test", "-f", "/etc/systemd/system/k3s-agent.service", check=False).returncode == 0
    balance = cluster.chain(lambda c: c.balance())
    unstaked = cluster.run("unstake", inventory, unstake_nodes=[worker])
    assert unstaked.returncode == 0, unstaked.output
    assert summary(unstaked)["nodes"][worker] == {"token_id": token.token_id, "state": "unstaked", "refund_sui": 2.0,
                                                  "drained": True, "agent_removed_on_host": True}
    assert cluster.token(worker) is None
    assert cluster.chain(lambda c: c.balance()) >= balance + 2 * SUI  # the node paid the gas, the operator the stake
    assert cluster.kube.call("GET", f"/api/v1/nodes/{worker}")[0] == 404
    for path in ("/etc/systemd/system/k3s-agent.service", "/usr/local/bin/k3s", "/etc/rancher/k3s"):
        assert docker("exec", worker, "test", "-e", path, check=False).returncode == 1, path

    again = cluster.run("unstake", inventory, unstake_nodes=[worker])
    assert changed(again) == 0, again.output
