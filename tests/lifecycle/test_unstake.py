"""unstake against the chain and the Kubernetes stand-in: the node is cordoned and drained (its pods evicted and
scheduled elsewhere), its token unstaked with the refund reported, the Kubernetes node deleted; then nothing."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from chain.conftest import new_signer
from kube.conftest import register_node

from .conftest import SUI, Cluster, changed, summary

pytestmark = pytest.mark.slow


def pods_by_node(cluster: Cluster, app: str) -> dict[str, list[str]]:
    status, pods = cluster.kube.call("GET", f"/api/v1/namespaces/default/pods?labelSelector=app%3D{app}")
    assert status == 200, pods
    placed: dict[str, list[str]] = {}
    for pod in pods["items"]:
        placed.setdefault(pod["spec"].get("nodeName") or "", []).append(pod["metadata"]["name"])
    return placed


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_unstake_drains_removes_and_refunds(cluster: Cluster, node_ids: Callable[[int], list[str]]) -> None:
    leaving, staying = node_ids(2)
    for name in (leaving, staying):
        register_node(cluster.kube, name)
    token = cluster.chain(lambda c: c.stake(leaving, 2 * SUI))
    app = f"web-{leaving}"
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "namespace": "default"},
                  "spec": {"replicas": 4, "selector": {"matchLabels": {"app": app}},
                           "template": {"metadata": {"labels": {"app": app}},
                                        "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    assert cluster.kube.call("POST", "/apis/apps/v1/namespaces/default/deployments", deployment)[0] == 201
    wait_for(lambda: leaving in pods_by_node(cluster, app), "a pod on the leaving node")
    balance = cluster.chain(lambda c: c.balance())

    run = cluster.run("unstake", unstake_nodes=[leaving])
    assert changed(run) == 3, run.output  # drain, unstake, node deleted
    assert summary(run)["nodes"] == {leaving: {"token_id": token.token_id, "state": "unstaked", "refund_sui": 2.0,
                                               "drained": True, "agent_removed_on_host": False}}
    assert cluster.token(leaving) is None
    assert cluster.chain(lambda c: c.balance()) > balance + 1.9 * SUI
    assert cluster.kube.call("GET", f"/api/v1/nodes/{leaving}")[0] == 404
    # The evicted pods came back on the node that stays; the drain left it schedulable.
    wait_for(lambda: pods_by_node(cluster, app).keys() == {staying}
             and len(pods_by_node(cluster, app)[staying]) == 4, "the pods rescheduled")
    assert not cluster.kube.call("GET", f"/api/v1/nodes/{staying}")[1]["spec"].get("unschedulable")

    again = cluster.run("unstake", unstake_nodes=leaving)
    assert changed(again) == 0, again.output
    assert summary(again)["nodes"][leaving]["state"] == "no SealToken (unstaked before)"


def test_unstake_refuses_a_token_it_cannot_sign_for(cluster: Cluster, node_ids: Callable[[int], list[str]]) -> None:
    """A token owned by a node key whose host is not in the inventory: refused before anything is drained."""
    (node_id,) = node_ids(1)
    register_node(cluster.kube, node_id)
    owner = new_signer().address
    cluster.chain(lambda c: c.stake(node_id, 2 * SUI, owner=owner))

    run = cluster.run("unstake", unstake_nodes=[node_id])
    assert run.returncode != 0
    assert f"is owned by {owner} (its node key), not by the operator {cluster.operator.address}" in run.output
    assert cluster.token(node_id) is not None
    node = cluster.kube.call("GET", f"/api/v1/nodes/{node_id}")[1]
    assert not node["spec"].get("unschedulable")  # not cordoned
