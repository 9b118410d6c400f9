"""The tier RBAC as the master keeps it (k3sdaas.nautilus.rbac, with role nautilus_master's manifest) against the
Kubernetes API stand-in: a restarted master changes nothing, ``kubectl auth can-i`` through impersonation answers
per tier group as the ClusterRoles say, and the developers' rights follow the namespace label."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from kubernetes import client

from helpers.rbac import DEVELOPER_LABEL, render_manifest
from k3sdaas.errors import InvalidInput
from k3sdaas.nautilus.config import load_config
from k3sdaas.nautilus.rbac import TierRbac

from .conftest import KUBECTL, Kube

pytestmark = pytest.mark.slow


def master_rbac(kube: Kube, directory: Path, namespaces: tuple[str, ...] = ()) -> TierRbac:
    """What a master starting with these settings keeps (its first sync is what it does at start)."""
    manifest = render_manifest(directory / "rbac.yaml", namespaces)
    return TierRbac(str(kube.kubeconfig), manifest, DEVELOPER_LABEL, interval=1)


def namespace(kube: Kube, name: str, developer: bool) -> None:
    labels = {"k3sdaas.io/developer": "true"} if developer else {}
    client.CoreV1Api(kube.api()).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name,
                                                                                                    labels=labels)))


def versions(kube: Kube) -> dict[str, str]:
    """resourceVersion of every object the master manages."""
    rbac = client.RbacAuthorizationV1Api(kube.api())
    core = client.CoreV1Api(kube.api())
    found = {}
    for listing in (rbac.list_cluster_role(), rbac.list_cluster_role_binding(),
                    rbac.list_role_binding_for_all_namespaces(), core.list_namespace(),
                    core.list_service_account_for_all_namespaces()):
        for item in listing.items:
            if (item.metadata.labels or {}).get("app.kubernetes.io/managed-by") == "k3sdaas":
                found[f"{item.kind}/{item.metadata.namespace}/{item.metadata.name}"] = item.metadata.resource_version
    return found


@pytest.fixture(scope="module")
def applied(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Kube:
    namespace(kube, "team-a", developer=True)
    namespace(kube, "elsewhere", developer=False)
    rbac = master_rbac(kube, tmp_path_factory.mktemp("rbac"))
    rbac.sync()
    assert rbac.applied
    return kube


def can_i(kube: Kube, *args: str, group: str = "", user: str = "sui:0xabc") -> bool:
    impersonate = [f"--as={user}"] + ([f"--as-group={group}"] if group else [])
    done = subprocess.run([KUBECTL, f"--kubeconfig={kube.kubeconfig}", "auth", "can-i", *impersonate, *args],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.stdout.strip() in {"yes", "no"}, done.stdout + done.stderr
    return done.stdout.strip() == "yes"


def test_a_restarted_master_changes_nothing(applied: Kube, tmp_path: Path) -> None:
    before = versions(applied)
    assert {"ClusterRole/None/k3sdaas:viewer", "RoleBinding/team-a/k3sdaas:developer",
            "ServiceAccount/k3sdaas-system/nautilus"} <= set(before)
    master_rbac(applied, tmp_path).sync()
    assert versions(applied) == before


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
    rbac = master_rbac(applied, tmp_path)
    rbac.sync()
    namespace(applied, "team-b", developer=True)
    assert not can_i(applied, "create", "pods", "-n", "team-b", group="k3sdaas:developer")
    rbac.sync()  # the master's next check
    assert can_i(applied, "create", "pods", "-n", "team-b", group="k3sdaas:developer")
    core = client.CoreV1Api(applied.api())
    unlabelled = core.read_namespace("team-b")
    unlabelled.metadata.labels = {}
    core.replace_namespace("team-b", unlabelled)
    rbac.sync()
    assert not can_i(applied, "create", "pods", "-n", "team-b", group="k3sdaas:developer")
    assert can_i(applied, "create", "pods", "-n", "team-a", group="k3sdaas:developer")


def test_listed_developer_namespaces_are_made_with_the_label(applied: Kube, tmp_path: Path) -> None:
    core = client.CoreV1Api(applied.api())
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="team-c", labels={"owner": "c"})))
    master_rbac(applied, tmp_path, ("team-c", "team-d")).sync()
    assert core.read_namespace("team-c").metadata.labels == {"owner": "c", "k3sdaas.io/developer": "true"}
    assert core.read_namespace("team-d").metadata.labels["k3sdaas.io/developer"] == "true"
    assert all(can_i(applied, "create", "pods", "-n", ns, group="k3sdaas:developer") for ns in ("team-c", "team-d"))


@pytest.mark.parametrize(
    ("manifest", "label", "message"),
    [
        ("kind: Secret\nmetadata: {name: s, namespace: default}\n", DEVELOPER_LABEL, "rbac_manifest.*object 1 must be"),
        ("kind: ClusterRole\nmetadata: {name: r, namespace: default}\n", DEVELOPER_LABEL, "object 1 must be a named"),
        ("[1, 2]\n", DEVELOPER_LABEL, "object 1 must be a named"),
        ("kind: ClusterRole\nmetadata: {name: 'a: b'\n", DEVELOPER_LABEL, "cannot be read: ParserError"),
        (None, DEVELOPER_LABEL, "cannot be read: FileNotFoundError"),
        ("", "no-equals-sign", "setting rbac_developer_label must be key=value"),
        ("", "a=b,c=d", "setting rbac_developer_label must be key=value"),
    ],
)
def test_bad_manifests_and_labels_stop_the_master_at_start(
    tmp_path: Path, manifest: str | None, label: str, message: str
) -> None:
    path = tmp_path / "rbac.yaml"
    if manifest is not None:
        path.write_text(manifest)
    env = {"K3SDAAS_PACKAGE_ID": "0x1", "K3SDAAS_NAUTILUS_RBAC_MANIFEST": str(path),
           "K3SDAAS_NAUTILUS_RBAC_DEVELOPER_LABEL": label}
    with pytest.raises(InvalidInput, match=message):
        load_config(None, env=env)


def test_an_unusable_kubeconfig_is_reported_and_the_master_keeps_trying(tmp_path: Path) -> None:
    rbac = TierRbac(str(tmp_path / "missing.kubeconfig"), render_manifest(tmp_path / "rbac.yaml"), DEVELOPER_LABEL,
                    interval=1)

    async def run_a_while() -> None:
        task = asyncio.create_task(rbac.keep_forever())
        await asyncio.sleep(0.5)
        assert not task.done()  # still trying, as the master's health reports
        task.cancel()

    asyncio.run(run_a_while())
    assert not rbac.applied and not rbac.synced
    assert rbac.error is not None and "missing.kubeconfig" in rbac.error and "cannot be used" in rbac.error
