"""rotate-seal-tokens, slash-recovery and teardown against the chain: what they change, what they leave, and
that a second run changes nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.sui import no_transaction_reaches

from .conftest import SUI, Cluster, changed, new_signer, summary

DAY_MS = 86_400_000

pytestmark = pytest.mark.slow


def test_rotate_refreshes_only_tokens_expiring_within_the_window(cluster: Cluster,
                                                                 node_ids: Callable[[int], list[str]]) -> None:
    soon, later = node_ids(2)
    # A token minted under a 3-day TTL expires inside the 7-day window; one minted under 30 days does not.
    cluster.chain(lambda c: c.configure_pool(token_ttl_ms=3 * DAY_MS))
    cluster.chain(lambda c: c.stake(soon, 2 * SUI))
    cluster.chain(lambda c: c.configure_pool(token_ttl_ms=30 * DAY_MS))
    cluster.chain(lambda c: c.stake(later, 2 * SUI))
    before = {n: cluster.token(n) for n in (soon, later)}

    run = cluster.run("rotate-seal-tokens", rotate_seal_tokens_nodes=[soon, later])
    assert changed(run) == 1, run.output  # the one refresh

    after = {n: cluster.token(n) for n in (soon, later)}
    assert after[soon].expires_at_ms - before[soon].expires_at_ms > 26 * DAY_MS  # now + 30 days, was now + 3
    assert after[soon].expires_at_ms >= time.time() * 1000 + 29 * DAY_MS
    assert after[later].expires_at_ms == before[later].expires_at_ms
    nodes = summary(run)["nodes"]
    assert (nodes[soon]["refreshed"], nodes[later]["refreshed"]) == (True, False)
    assert nodes[soon]["owner"] == "operator" and nodes[soon]["days_left"] >= 29.9

    again = cluster.run("rotate-seal-tokens", rotate_seal_tokens_nodes=f"{soon},{later}")  # as an AWX survey sends it
    assert changed(again) == 0, again.output
    assert cluster.token(soon).expires_at_ms == after[soon].expires_at_ms


def test_slash_recovery_restakes_to_the_tier_minimum(cluster: Cluster, node_ids: Callable[[int], list[str]]) -> None:
    slashed, healthy = node_ids(2)
    for node_id in (slashed, healthy):
        cluster.chain(lambda c, n=node_id: c.stake(n, 2 * SUI))
    token = cluster.token(slashed)
    cluster.chain(lambda c: c.slash(token.token_id, 5000, "lifecycle test: missed heartbeats"))
    assert (cluster.token(slashed).stake_mist, cluster.token(slashed).tier) == (1 * SUI, 1)  # viewer now

    run = cluster.run("slash-recovery", slash_recovery_nodes=[slashed, healthy], slash_recovery_tier="developer")
    assert changed(run) == 1, run.output  # one top-up
    assert f"{slashed}: slashed 1.0 SUI in all, stake now 1.0 SUI (viewer" in run.output

    recovered = cluster.token(slashed)
    assert (recovered.token_id, recovered.stake_mist, recovered.tier) == (token.token_id, 2 * SUI, 2)
    assert recovered.slashed_total_mist == 1 * SUI
    assert cluster.token(healthy).stake_mist == 2 * SUI
    nodes = summary(run)["nodes"]
    assert nodes[slashed] | {"rejoined": False} == {
        "token_id": token.token_id, "tier": "developer", "stake_sui": 2.0, "slashed_sui": 1.0,
        "restaked_sui": 1.0, "rejoined": False}
    assert nodes[healthy]["restaked_sui"] == 0

    assert changed(cluster.run("slash-recovery", slash_recovery_nodes=[slashed, healthy])) == 0

    # A higher tier asks for more: admin's minimum is 5 SUI.
    assert changed(cluster.run("slash-recovery", slash_recovery_nodes=[slashed], slash_recovery_tier="admin")) == 1
    assert (cluster.token(slashed).stake_mist, cluster.token(slashed).tier) == (5 * SUI, 3)


def test_teardown_refuses_without_confirmation(cluster: Cluster, node_ids: Callable[[int], list[str]]) -> None:
    (operator_node,) = node_ids(1)
    cluster.chain(lambda c: c.stake(operator_node, 5 * SUI))
    inventory = cluster.inventory(k3sdaas_operator_node_id=operator_node)

    with no_transaction_reaches(cluster.node, reads=False):
        refused = cluster.run("teardown", inventory, teardown_unstake=True)  # no terminal: the question gets no yes
    assert refused.returncode != 0
    assert "teardown not confirmed (answer yes, or set teardown_confirm=true); nothing was removed" in refused.output
    ran = {name for play in refused.report["plays"] for name in [t["task"]["name"] for t in play["tasks"]]}
    assert "Remove the local systemd containers" not in ran and "Unstake the tokens the operator owns" not in ran
    assert cluster.token(operator_node) is not None

    # Confirmed but without teardown_unstake: the chain is left alone.
    with no_transaction_reaches(cluster.node, reads=False):
        kept = cluster.run("teardown", inventory, teardown_confirm=True)
    assert changed(kept) == 0
    assert summary(kept)["unstaked"].startswith("nothing (teardown_unstake=false")
    assert cluster.token(operator_node) is not None


def test_teardown_unstakes_when_asked(cluster: Cluster, node_ids: Callable[[int], list[str]]) -> None:
    (operator_node,) = node_ids(1)
    token = cluster.chain(lambda c: c.stake(operator_node, 5 * SUI))
    inventory = cluster.inventory(k3sdaas_operator_node_id=operator_node)
    balance = cluster.chain(lambda c: c.balance())

    run = cluster.run("teardown", inventory, teardown_confirm="true", teardown_unstake="yes")  # -e k=v text
    assert changed(run) == 1, run.output
    assert summary(run)["unstaked"] == {operator_node: {"token_id": token.token_id, "refund_sui": 5.0}}
    assert cluster.token(operator_node) is None
    assert cluster.chain(lambda c: c.balance()) > balance + 4.9 * SUI  # the stake came back, less gas

    again = cluster.run("teardown", inventory, teardown_confirm=True, teardown_unstake=True)
    assert changed(again) == 0, again.output
    assert summary(again)["unstaked"] == {}


def test_teardown_of_a_chain_without_the_deployment_has_nothing_to_unstake(cluster: Cluster, tmp_path: Path) -> None:
    stranger = new_signer()  # a key that never published a deployment
    cluster.node.faucet(stranger.address, 1 * SUI)
    key = tmp_path / "stranger.key"
    key.write_text(stranger.keystring)
    key.chmod(0o600)
    inventory = cluster.inventory(k3sdaas_sui_package_id="", k3sdaas_sui_environment={
        "SUI_RPC_URL": cluster.node.url, "SUI_KEY_FILE": str(key), "SUI_CA_FILE": str(cluster.node.ca_path)})

    with no_transaction_reaches(cluster.node):  # it looks for the deployment, and finds none
        run = cluster.run("teardown", inventory, teardown_confirm=True, teardown_unstake=True)
    assert run.returncode == 0, run.output
    assert changed(run) == 0 and summary(run)["unstaked"] == {}


@pytest.mark.docker
def test_teardown_deletes_its_hosts_kubernetes_nodes_and_so_their_node_passwords(
        cluster: Cluster, node_ids: Callable[[int], list[str]]) -> None:
    # The local Kubernetes API outlives the hosts: a Node left behind would keep its node password, and a new
    # host of that name would be refused ("Node password rejected") for ever.
    ours, other = node_ids(2)
    for name in (ours, other):
        assert cluster.kube.call("POST", "/api/v1/nodes", {"metadata": {"name": name}})[0] == 201
        assert cluster.kube.call("POST", "/api/v1/namespaces/kube-system/secrets", {
            "metadata": {"name": f"{name}.node-password.k3s"}, "type": "k3s.cattle.io/node-password",
            "data": {"hash": "eA=="}})[0] == 201
    inventory = cluster.inventory({ours: {"ansible_connection": "docker"}},
                                  k3sdaas_k3s_admin_kubeconfig=str(cluster.kube.kubeconfig))

    run = cluster.run("teardown", inventory, teardown_confirm=True)
    assert changed(run) == 1, run.output
    assert summary(run)["kubernetes_nodes_deleted"] == [ours]
    assert cluster.kube.call("GET", f"/api/v1/nodes/{ours}")[0] == 404
    assert cluster.kube.call("GET", f"/api/v1/namespaces/kube-system/secrets/{ours}.node-password.k3s")[0] == 404
    assert cluster.kube.call("GET", f"/api/v1/nodes/{other}")[0] == 200  # not in this inventory: left alone

    again = cluster.run("teardown", inventory, teardown_confirm=True)
    assert changed(again) == 0, again.output
    assert summary(again)["kubernetes_nodes_deleted"] == []


@pytest.mark.docker
def test_teardown_stops_before_removing_anything_when_a_node_key_cannot_unstake(
        cluster: Cluster, node_ids: Callable[[int], list[str]]) -> None:
    # The token's key lives only on its host, which is not there: removing the hosts would lock the stake for ever.
    # (A host with nothing to unstake keeps the play going, as the master does: a play whose every host failed would
    # end the run by itself.)
    lost, tokenless = node_ids(2)
    token = cluster.chain(lambda c: c.stake(lost, 2 * SUI, owner=new_signer().address))
    inventory = cluster.inventory({lost: {"ansible_connection": "docker"}, tokenless: {"ansible_connection": "docker"}},
                                  k3sdaas_k3s_admin_kubeconfig=str(cluster.kube.kubeconfig))

    with no_transaction_reaches(cluster.node):  # it reads the token, and unstakes nothing
        run = cluster.run("teardown", inventory, teardown_confirm=True, teardown_unstake=True)
    assert run.returncode != 0
    stops = [result["msg"] for name, result in run.results() if name == "Check every node key unstaked its token"]
    assert len(stops) == 1, run.output[-6000:]
    stop = stops[0]
    assert stop == (f"the SealTokens of {lost} are owned by their node keys, which live only on those hosts, and were "
                    "not unstaked there (see above); start the hosts (deploy-all.yml brings them back) and run "
                    "teardown again, or leave teardown_unstake off to keep the stake; nothing was removed")
    ran = {name for play in run.report["plays"] for name in [t["task"]["name"] for t in play["tasks"]]}
    assert not ran & {"Remove the local systemd containers", "Unstake the tokens the operator owns",
                      "Delete the removed hosts' Kubernetes nodes"}
    assert cluster.token(lost).token_id == token.token_id  # still staked
