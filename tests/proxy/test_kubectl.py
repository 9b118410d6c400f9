"""Real kubectl (the oldest and newest here) through the exec plugin and the proxy to the Kubernetes stand-in."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
import uuid

import pytest
from proxy.conftest import Admin, Identity, Kubectl


def configmap(namespace: str) -> list[str]:
    return ["create", "configmap", f"cm-{uuid.uuid4().hex[:8]}", "-n", namespace, "--from-literal=a=b"]


def test_tiers_decide_what_kubectl_may_do(kubectl: Kubectl, identities: dict[str, Identity], cluster: Admin) -> None:
    viewer, developer, admin = identities["viewer"], identities["developer"], identities["admin"]

    listed = kubectl(viewer, "get", "pods", "-n", "dev", "-o", "name")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["pod/web"]

    refused = kubectl(viewer, *configmap("dev"))
    assert refused.returncode == 1
    assert 'configmaps is forbidden: User "sui:' in refused.stderr, refused.stderr
    assert "the viewer tier may only get, list and watch" in refused.stderr, refused.stderr

    made = kubectl(developer, *configmap("dev"))
    assert made.returncode == 0, made.stderr
    elsewhere = kubectl(developer, *configmap("other"))
    assert elsewhere.returncode == 1
    # RBAC in the API server refuses it, for the impersonated user and group
    assert f'User "sui:{developer.signer.address}" cannot create resource "configmaps"' in elsewhere.stderr, \
        elsewhere.stderr

    assert kubectl(admin, *configmap("other")).returncode == 0


def test_auth_can_i_answers_per_identity(kubectl: Kubectl, identities: dict[str, Identity]) -> None:
    expected = {("viewer", "dev"): "no", ("developer", "dev"): "yes", ("developer", "other"): "no",
                ("admin", "other"): "yes"}
    for (tier, namespace), answer in expected.items():
        done = kubectl(identities[tier], "auth", "can-i", "create", "configmaps", "-n", namespace)
        assert done.stdout.strip().split()[0] == answer, (tier, namespace, done.stdout, done.stderr)
        assert done.returncode == (0 if answer == "yes" else 1)
    done = kubectl(identities["viewer"], "auth", "can-i", "list", "pods", "-n", "other")
    assert done.stdout.strip() == "yes", done.stderr


def whoami(kubectl: Kubectl, who: Identity, *extra: str) -> dict[str, object]:
    done = kubectl(who, "auth", "whoami", "-o", "json", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["status"]["userInfo"]  # type: ignore[no-any-return]


def test_whoami_is_the_sui_identity_whatever_the_client_claims(kubectl: Kubectl,
                                                                identities: dict[str, Identity]) -> None:
    if kubectl.version < (1, 27):
        pytest.skip("kubectl auth whoami appeared in 1.27")
    for tier, who in identities.items():
        info = whoami(kubectl, who)
        assert info["username"] == f"sui:{who.signer.address}"
        assert info["groups"] == [f"k3sdaas:{tier}", "system:authenticated"]
    # kubectl sends Impersonate-User/-Group/-Uid for these; the proxy drops them all
    viewer = identities["viewer"]
    info = whoami(kubectl, viewer, "--as=system:admin", "--as-group=system:masters", "--as-uid=root-uid")
    assert info == {"username": f"sui:{viewer.signer.address}", "groups": ["k3sdaas:viewer", "system:authenticated"]}
    assert kubectl(viewer, *configmap("dev"), "--as=system:admin", "--as-group=system:masters").returncode == 1


def test_watch_streams_events_as_they_happen(kubectl: Kubectl, identities: dict[str, Identity],
                                             cluster: Admin) -> None:
    developer = identities["developer"]
    name = f"watched-{uuid.uuid4().hex[:8]}"
    lines: queue.Queue[str] = queue.Queue()
    before = cluster.call("POST", "/api/v1/namespaces/dev/configmaps",
                          {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-before"}})
    assert before.status_code == 201, before.text
    with subprocess.Popen([kubectl.binary, "--kubeconfig", str(kubectl.config(developer)), "--cache-dir",
                           str(kubectl.home / "cache"), "get", "configmaps", "-n", "dev", "-w", "-o", "name"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kubectl.env()) as watcher:
        assert watcher.stdout is not None
        threading.Thread(target=lambda: [lines.put(line.strip()) for line in watcher.stdout], daemon=True).start()
        try:
            first = lines.get(timeout=30)  # the initial list: at least the one made before
            assert first.startswith("configmap/"), first
            time.sleep(1)
            created = time.monotonic()
            response = cluster.call("POST", "/api/v1/namespaces/dev/configmaps",
                                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
            assert response.status_code == 201, response.text
            while lines.get(timeout=10) != f"configmap/{name}":
                pass
            assert time.monotonic() - created < 3, "the event was held back"
            assert watcher.poll() is None, "kubectl get -w should still be watching"
        finally:
            watcher.kill()


def test_exec_upgrade_passes_through(kubectl: Kubectl, identities: dict[str, Identity]) -> None:
    done = kubectl(identities["developer"], "exec", "web", "-n", "dev", "--", "ls")
    assert done.returncode == 1
    if kubectl.version >= (1, 30):
        # the stand-in's answer on the exec channels (stderr, then the status), relayed after the 101
        assert "no container runs, so there is nothing to exec in pod web" in done.stderr, done.stderr
    else:  # SPDY only: the upstream's refusal of SPDY comes back as its Status
        assert "Error from server (BadRequest): exec needs a WebSocket upgrade" in done.stderr, done.stderr
    refused = kubectl(identities["viewer"], "exec", "web", "-n", "dev", "--", "ls")
    assert refused.returncode == 1
    assert "the viewer tier may only get, list and watch" in refused.stderr, refused.stderr
    # RBAC in the API server refuses the developer outside its namespaces; its Status comes back
    elsewhere = kubectl(identities["developer"], "exec", "web", "-n", "other", "--", "ls")
    assert elsewhere.returncode == 1
    assert 'cannot create resource "pods/exec"' in elsewhere.stderr or \
        'cannot get resource "pods/exec"' in elsewhere.stderr, elsewhere.stderr
