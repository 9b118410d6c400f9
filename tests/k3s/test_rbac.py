"""Role k3s_rbac applied with kubernetes.core.k8s against the Kubernetes API stand-in: idempotent, and
``kubectl auth can-i`` through impersonation answers per tier group as the ClusterRoles say."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from helpers.playbook import PlaybookRun, run_playbook

from .conftest import KUBECTL, Kube

pytestmark = pytest.mark.slow
PLAY = """\
- name: Apply the tier RBAC
  hosts: localhost
  gather_facts: false
  roles:
    - role: k3sdaas.core.k3s_rbac
"""


def apply(kube: Kube, tmp_path: Path, **variables: Any) -> PlaybookRun:
    playbook = tmp_path / "rbac.yml"
    playbook.write_text(PLAY)
    return run_playbook(playbook, local=True, extra_vars={"k3s_rbac_kubeconfig": str(kube.kubeconfig), **variables})


def namespace(kube: Kube, name: str, developer: bool) -> None:
    labels = {"k3sdaas.io/developer": "true"} if developer else {}
    client.CoreV1Api(kube.api()).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name,
                                                                                                    labels=labels)))


@pytest.fixture(scope="module")
def applied(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Kube:
    namespace(kube, "team-a", developer=True)
    namespace(kube, "elsewhere", developer=False)
    first = apply(kube, tmp_path_factory.mktemp("rbac"))
    assert first.returncode == 0 and first.stats["localhost"]["changed"] > 0, first.output
    return kube


def can_i(kube: Kube, *args: str, group: str = "", user: str = "sui:0xabc") -> bool:
    impersonate = [f"--as={user}"] + ([f"--as-group={group}"] if group else [])
    done = subprocess.run([KUBECTL, f"--kubeconfig={kube.kubeconfig}", "auth", "can-i", *impersonate, *args],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.stdout.strip() in {"yes", "no"}, done.stdout + done.stderr
    return done.stdout.strip() == "yes"


def test_reapplied_changes_nothing(applied: Kube, tmp_path: Path) -> None:
    again = apply(applied, tmp_path)
    assert again.returncode == 0 and again.stats["localhost"]["changed"] == 0, again.output


@pytest.mark.parametrize(
    ("group", "question", "allowed"),
    [
        ("k3sdaas:viewer", ["get", "pods", "-n", "elsewhere"], True),
        ("k3sdaas:viewer", ["list", "deployments.apps", "-n", "team-a"], True),
        ("k3sdaas:viewer", ["create", "pods", "-n", "team-a"], False),
        ("k3sdaas:viewer", ["get", "secrets", "-n", "elsewhere"], False),
        ("k3sdaas:developer", ["create", "pods", "-n", "team-a"], True),
        ("k3sdaas:developer", ["get", "secrets", "-n", "team-a"], True),
        ("k3sdaas:developer", ["create", "pods", "-n", "elsewhere"], False),
        ("k3sdaas:developer", ["get", "pods", "-n", "elsewhere"], True),
        ("k3sdaas:developer", ["get", "secrets", "-n", "elsewhere"], False),
        ("k3sdaas:admin", ["delete", "nodes"], True),
        ("k3sdaas:admin", ["get", "secrets", "-n", "elsewhere"], True),
        ("k3sdaas:admin", ["update", "clusterroles"], False),
        ("k3sdaas:admin", ["create", "clusterrolebindings"], False),
        ("k3sdaas:admin", ["create", "rolebindings", "-n", "team-a"], False),
        ("k3sdaas:admin", ["impersonate", "users"], False),
        ("k3sdaas:admin", ["get", "clusterroles"], True),
        ("k3sdaas:super-user", ["update", "clusterroles"], True),
        ("k3sdaas:super-user", ["impersonate", "groups"], True),
        ("", ["get", "pods", "-n", "team-a"], False),  # no tier group: nothing
    ],
)
def test_tier_groups_through_impersonation(applied: Kube, group: str, question: list[str], allowed: bool) -> None:
    assert can_i(applied, *question, group=group) is allowed


MASTER = "system:serviceaccount:k3sdaas-system:nautilus"


@pytest.mark.parametrize(
    ("question", "allowed"),
    [(["impersonate", "users"], True), (["impersonate", "groups"], True),
     (["impersonate", "serviceaccounts", "-n", "default"], False), (["get", "pods", "-n", "default"], False),
     (["create", "secrets", "-n", "k3sdaas-system"], False)],
)
def test_master_service_account_may_only_impersonate(applied: Kube, question: list[str], allowed: bool) -> None:
    assert can_i(applied, *question, user=MASTER) is allowed


def test_developer_rights_follow_the_namespace_label(applied: Kube, tmp_path: Path) -> None:
    namespace(applied, "team-b", developer=True)
    assert not can_i(applied, "create", "pods", "-n", "team-b", group="k3sdaas:developer")
    assert apply(applied, tmp_path).returncode == 0
    assert can_i(applied, "create", "pods", "-n", "team-b", group="k3sdaas:developer")
    core = client.CoreV1Api(applied.api())
    unlabelled = core.read_namespace("team-b")
    unlabelled.metadata.labels = {}
    core.replace_namespace("team-b", unlabelled)
    run = apply(applied, tmp_path)
    assert run.returncode == 0 and run.stats["localhost"]["changed"] == 1, run.output
    assert not can_i(applied, "create", "pods", "-n", "team-b", group="k3sdaas:developer")


def test_listed_developer_namespaces_are_made_with_the_label(applied: Kube, tmp_path: Path) -> None:
    core = client.CoreV1Api(applied.api())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="team-c", labels={"owner": "c"})))
    run = apply(applied, tmp_path, k3s_rbac_developer_namespaces=["team-c", "team-d"])
    assert run.returncode == 0, run.output
    assert core.read_namespace("team-c").metadata.labels == {"owner": "c", "k3sdaas.io/developer": "true"}
    assert core.read_namespace("team-d").metadata.labels["k3sdaas.io/developer"] == "true"
    assert all(can_i(applied, "create", "pods", "-n", ns, group="k3sdaas:developer") for ns in ("team-c", "team-d"))
    again = apply(applied, tmp_path, k3s_rbac_developer_namespaces=["team-c", "team-d"])
    assert again.returncode == 0 and again.stats["localhost"]["changed"] == 0, again.output

    refused = apply(applied, tmp_path, k3s_rbac_developer_namespaces=["Team_E"])
    assert refused.returncode != 0 and "k3s_rbac_developer_namespaces" in refused.output
    assert "Team_E" not in {n.metadata.name for n in core.list_namespace().items}
