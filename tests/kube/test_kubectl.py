"""Real kubectl (the oldest and the newest found) against the stand-in."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path

import yaml

from .conftest import Kube, Kubectl, register_node

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}, labels: {{app: {name}}}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: main, image: "{image}"}}]}}
"""


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def pods_of(kubectl: Kubectl, namespace: str, app: str) -> list[dict]:
    return json.loads(ok(kubectl("-n", namespace, "get", "pods", "-l", f"app={app}", "-o", "json")))["items"]


def wait_for(predicate, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def test_version_and_discovery(kubectl: Kubectl) -> None:
    assert "v1.33.0" in ok(kubectl("version"))
    resources = ok(kubectl("api-resources", "-o", "name"))
    for name in ("pods", "deployments.apps", "leases.coordination.k8s.io", "clusterroles.rbac.authorization.k8s.io"):
        assert name in resources.split()
    rows = [line.split() for line in ok(kubectl("api-resources", "--api-group=apps")).splitlines()]
    assert ["deployments", "deploy", "apps/v1", "true", "Deployment"] in rows
    short = kubectl("get", "deploy", "-n", "kube-system")  # short names resolve through discovery
    assert short.returncode == 0 and "No resources found" in short.stderr


def test_namespace_configmap_create_get_delete(kubectl: Kubectl) -> None:
    ns = f"crud-{kubectl.version[1]}"
    assert f"namespace/{ns} created" in ok(kubectl("create", "namespace", ns))  # protobuf body from kubectl ≥ 1.32
    assert ok(kubectl("-n", ns, "create", "configmap", "settings", "--from-literal=colour=blue"))
    data = json.loads(ok(kubectl("-n", ns, "get", "configmap", "settings", "-o", "json")))["data"]
    assert data == {"colour": "blue"}
    again = kubectl("create", "namespace", ns)
    assert again.returncode == 1
    assert f'Error from server (AlreadyExists): namespaces "{ns}" already exists' in again.stderr
    table = ok(kubectl("get", "namespaces"))
    assert table.splitlines()[0].split() == ["NAME", "STATUS", "AGE"] and f"{ns} " in table
    assert ok(kubectl("get", "serviceaccount", "default", "-n", ns, "-o", "name")).strip() == "serviceaccount/default"
    assert f'namespace "{ns}" deleted' in ok(kubectl("delete", "namespace", ns))
    missing = kubectl("-n", ns, "get", "configmap", "settings")
    # kubectl 1.20 then asks for the namespace and reports that instead
    assert missing.returncode == 1 and ('configmaps "settings" not found' in missing.stderr
                                        or f'namespaces "{ns}" not found' in missing.stderr)


def test_apply_deployment_runs_its_pods_on_registered_nodes(kube: Kube, kubectl: Kubectl) -> None:
    nodes = [f"worker-{kubectl.version[1]}-{i}" for i in range(2)]
    for name in nodes:
        register_node(kube, name, {"k3sdaas.io/tier": "gold"})
    listed = ok(kubectl("get", "nodes"))
    for name in nodes:
        assert any(line.split()[:2] == [name, "Ready"] for line in listed.splitlines()), listed
    ns = f"apps-{kubectl.version[1]}"
    ok(kubectl("create", "namespace", ns))
    manifest = DEPLOYMENT.format(name="web", namespace=ns, replicas=3, image="nginx:1.27")
    assert "deployment.apps/web created" in ok(kubectl("apply", "-f", "-", stdin=manifest))
    running = wait_for(lambda: [p for p in pods_of(kubectl, ns, "web") if p["status"]["phase"] == "Running"])
    assert len(running) == 3
    ready = {line.split()[0] for line in ok(kubectl("get", "nodes")).splitlines()[1:] if line.split()[1] == "Ready"}
    assert {p["spec"]["nodeName"] for p in running} <= ready
    assert len({p["spec"]["nodeName"] for p in running}) >= 2  # fewest pods first spreads them
    shown = ok(kubectl("-n", ns, "get", "deployment", "web"))
    assert shown.splitlines()[1].split()[:4] == ["web", "3/3", "3", "3"], shown
    # unchanged: no write; changed image and replicas: strategic merge patch, pods replaced
    assert "deployment.apps/web unchanged" in ok(kubectl("apply", "-f", "-", stdin=manifest))
    changed = DEPLOYMENT.format(name="web", namespace=ns, replicas=2, image="nginx:1.28")
    assert "deployment.apps/web configured" in ok(kubectl("apply", "-f", "-", stdin=changed))
    images = wait_for(lambda: (lambda pods: len(pods) == 2 and {p["spec"]["containers"][0]["image"] for p in pods})(
        pods_of(kubectl, ns, "web")))
    assert images == {"nginx:1.28"}
    assert 'deployment.apps "web" deleted' in ok(kubectl("-n", ns, "delete", "deployment", "web"))
    assert wait_for(lambda: not pods_of(kubectl, ns, "web"))
    ok(kubectl("delete", "namespace", ns))


def test_create_deployment_spreads_three_running_pods(kube: Kube, kubectl: Kubectl) -> None:
    nodes = [f"spread-{kubectl.version[1]}-{i}" for i in range(3)]
    for name in nodes:
        register_node(kube, name)
    ns = f"create-{kubectl.version[1]}"
    ok(kubectl("create", "namespace", ns))
    # kubectl ≥ 1.32 sends this Deployment as protobuf
    assert "deployment.apps/web created" in ok(kubectl("-n", ns, "create", "deployment", "web", "--image=nginx",
                                                       "--replicas=3"))
    running = wait_for(lambda: (lambda pods: len(pods) == 3 and all(p["status"]["phase"] == "Running" for p in pods)
                                and pods)(pods_of(kubectl, ns, "web")))
    assert running, pods_of(kubectl, ns, "web")
    assert len({p["spec"]["nodeName"] for p in running}) >= 2
    rows = [line.split() for line in ok(kubectl("-n", ns, "get", "pods", "-o", "wide")).splitlines()[1:]]
    assert len(rows) == 3 and all(row[1:3] == ["1/1", "Running"] for row in rows), rows
    assert "deployment.apps/web scaled" in ok(kubectl("-n", ns, "scale", "deployment", "web", "--replicas=1"))
    assert wait_for(lambda: len(pods_of(kubectl, ns, "web")) == 1)
    ok(kubectl("delete", "namespace", ns))


def test_watch_streams_changes(kube: Kube, kubectl: Kubectl) -> None:
    ns = f"watch-{kubectl.version[1]}"
    ok(kubectl("create", "namespace", ns))
    watcher = subprocess.Popen([kubectl.binary, "--kubeconfig", str(kube.kubeconfig), "--cache-dir", str(kubectl.cache),
                                "-n", ns, "get", "configmaps", "-w", "-o", "name", "--request-timeout=8s"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    ok(kubectl("-n", ns, "create", "configmap", "first"))
    ok(kubectl("-n", ns, "label", "configmap", "first", "seen=yes"))
    out, err = watcher.communicate(timeout=30)
    assert out.count("configmap/first") >= 2, (out, err)
    ok(kubectl("delete", "namespace", ns))


def test_exec_upgrades_and_port_forward_is_refused(kube: Kube, kubectl: Kubectl) -> None:
    ns = f"exec-{kubectl.version[1]}"
    ok(kubectl("create", "namespace", ns))
    register_node(kube, f"exec-node-{kubectl.version[1]}")
    ok(kubectl("-n", ns, "run", "shell", "--image=busybox"))
    assert wait_for(lambda: "Running" in ok(kubectl("-n", ns, "get", "pod", "shell")))
    result = kubectl("-n", ns, "exec", "shell", "--", "ls")
    assert result.returncode != 0
    if kubectl.version >= (1, 30):  # WebSocket exec (older kubectl speak SPDY only, refused with a Status)
        assert "no container runs, so there is nothing to exec in pod shell" in result.stderr + result.stdout
    else:
        assert "Error from server (BadRequest): exec needs a WebSocket upgrade" in result.stderr
    forward = kubectl("-n", ns, "port-forward", "pod/shell", "18080:80", timeout=30)
    assert forward.returncode == 1 and "port-forward is not supported" in forward.stderr
    logs = ok(kubectl("-n", ns, "logs", "shell"))
    assert "no container runs" in logs
    ok(kubectl("delete", "namespace", ns))


TIER_ROLES = """
apiVersion: v1
kind: Namespace
metadata: {name: dev-team}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: test:viewer}
rules:
- {apiGroups: ["", "apps"], resources: [pods, deployments, configmaps, namespaces], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: test:developer}
rules:
- {apiGroups: ["", "apps"], resources: [pods, pods/exec, deployments, configmaps], verbs: ["*"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: test:admin}
rules:
- {apiGroups: ["*"], resources: ["*"], verbs: ["*"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: test:viewer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: test:viewer}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: tier:viewer},
           {apiGroup: rbac.authorization.k8s.io, kind: Group, name: tier:developer}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: test:developer, namespace: dev-team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: test:developer}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: tier:developer}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: test:admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: test:admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: tier:admin}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: master, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: test:impersonator}
rules:
- {apiGroups: [""], resources: [users, groups], verbs: [impersonate]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: test:impersonator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: test:impersonator}
subjects: [{kind: ServiceAccount, name: master, namespace: kube-system}]
---
apiVersion: v1
kind: Secret
metadata:
  name: master-token
  namespace: kube-system
  annotations: {kubernetes.io/service-account.name: master}
type: kubernetes.io/service-account-token
"""


def master_kubeconfig(kube: Kube, kubectl: Kubectl) -> Path:
    """A kubeconfig for the impersonating ServiceAccount (its legacy token Secret)."""
    secret = json.loads(ok(kubectl("-n", "kube-system", "get", "secret", "master-token", "-o", "json")))
    config = yaml.safe_load(kube.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": base64.b64decode(secret["data"]["token"]).decode()}
    path = kubectl.cache.parent / "master.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_auth_can_i_per_tier_through_impersonation(kube: Kube, kubectl: Kubectl) -> None:
    ok(kubectl("apply", "-f", "-", stdin=TIER_ROLES))
    master = master_kubeconfig(kube, kubectl)

    def can(group: str, *args: str) -> bool:
        result = kubectl("auth", "can-i", *args, "--as=alice", f"--as-group={group}", kubeconfig=master)
        assert result.stdout.strip() in ("yes", "no"), result.stderr
        return result.stdout.strip() == "yes"

    assert can("tier:viewer", "list", "pods", "-n", "default")
    assert not can("tier:viewer", "create", "pods", "-n", "default")
    assert not can("tier:viewer", "get", "secrets", "-n", "default")
    assert can("tier:developer", "create", "pods", "-n", "dev-team")
    assert can("tier:developer", "create", "pods", "--subresource=exec", "-n", "dev-team")
    assert not can("tier:developer", "create", "pods", "-n", "default")
    assert can("tier:developer", "get", "pods", "-n", "default")
    assert can("tier:admin", "delete", "nodes")
    listed = kubectl("auth", "can-i", "--list", "-n", "default", "--as=alice", "--as-group=tier:viewer",
                     kubeconfig=master)
    rows = [line.split() for line in ok(listed).splitlines()]
    assert ["pods", "[]", "[]", "[get", "list", "watch]"] in rows, rows
    assert not any(row[0].startswith("secrets") for row in rows)
    # the master itself (no impersonation) holds only `impersonate`
    own = kubectl("auth", "can-i", "list", "pods", kubeconfig=master)
    assert own.stdout.strip() == "no"
    whoami = kubectl("auth", "whoami", "-o", "json", "--as=alice", "--as-group=tier:viewer", kubeconfig=master)
    if kubectl.version >= (1, 28):
        info = json.loads(ok(whoami))["status"]["userInfo"]
        assert info == {"username": "alice", "groups": ["tier:viewer", "system:authenticated"]}
    # impersonating a UID needs `impersonate` on uids, which the master lacks
    refused = kubectl("get", "pods", "--as=alice", "--as-uid=u-1", kubeconfig=master)
    if kubectl.version >= (1, 23):
        assert refused.returncode == 1
        assert ('uids "u-1" is forbidden: User "system:serviceaccount:kube-system:master" cannot impersonate '
                'resource "uids" in API group "authentication.k8s.io" at the cluster scope') in refused.stderr
    denied = kubectl("-n", "default", "create", "configmap", "nope", "--as=alice", "--as-group=tier:viewer",
                     kubeconfig=master)
    assert denied.returncode == 1 and ('configmaps is forbidden: User "alice" cannot create resource "configmaps" '
                                       'in API group "" in the namespace "default"') in denied.stderr


def test_impersonation_needs_the_verb(kube: Kube, kubectl: Kubectl, tmp_path: Path) -> None:
    ok(kubectl("apply", "-f", "-", stdin=TIER_ROLES))
    ok(kubectl("-n", "kube-system", "create", "serviceaccount", f"plain-{kubectl.version[1]}"))
    manifest = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
                "metadata": {"name": f"plain-{kubectl.version[1]}-token", "namespace": "kube-system",
                             "annotations": {"kubernetes.io/service-account.name": f"plain-{kubectl.version[1]}"}}}
    ok(kubectl("apply", "-f", "-", stdin=json.dumps(manifest)))

    secret = json.loads(ok(kubectl("-n", "kube-system", "get", "secret", manifest["metadata"]["name"], "-o", "json")))
    config = yaml.safe_load(kube.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": base64.b64decode(secret["data"]["token"]).decode()}
    path = tmp_path / "plain.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    result = kubectl("get", "pods", "--as=alice", kubeconfig=path)
    assert result.returncode == 1
    assert (f'users "alice" is forbidden: User "system:serviceaccount:kube-system:plain-{kubectl.version[1]}" '
            'cannot impersonate resource "users" in API group "" at the cluster scope') in result.stderr


def test_errors_are_status_objects(kubectl: Kubectl) -> None:
    missing = kubectl("get", "pod", "nope", "-n", "default")
    assert missing.returncode == 1 and 'Error from server (NotFound): pods "nope" not found' in missing.stderr
    unknown = kubectl("get", "widgets")
    assert unknown.returncode == 1 and 'the server doesn\'t have a resource type "widgets"' in unknown.stderr


def test_imperative_rbac_objects_and_aggregation(kubectl: Kubectl) -> None:
    v = kubectl.version[1]
    ns = f"rbac-{v}"
    ok(kubectl("create", "namespace", ns))
    # kubectl ≥ 1.32 sends these four as protobuf
    ok(kubectl("-n", ns, "create", "role", "reader", "--verb=get", "--resource=pods"))
    ok(kubectl("-n", ns, "create", "rolebinding", "reader", "--role=reader", f"--user=bob-{v}"))
    ok(kubectl("create", "clusterrole", f"aggregate-{v}", f"--aggregation-rule=k3sdaas.test/agg-{v}=true"))
    ok(kubectl("create", "clusterrole", f"part-{v}", "--verb=list", "--resource=nodes"))
    ok(kubectl("label", "clusterrole", f"part-{v}", f"k3sdaas.test/agg-{v}=true"))
    ok(kubectl("create", "clusterrolebinding", f"aggregate-{v}", f"--clusterrole=aggregate-{v}", f"--group=agg-{v}"))

    def can(*args: str) -> str:
        return kubectl("auth", "can-i", *args).stdout.strip()

    assert can("get", "pods", "-n", ns, f"--as=bob-{v}") == "yes"
    assert can("list", "pods", "-n", ns, f"--as=bob-{v}") == "no"
    assert can("get", "pods", "-n", "default", f"--as=bob-{v}") == "no"
    assert can("list", "nodes", "--as=carol", f"--as-group=agg-{v}") == "yes"
    assert can("delete", "nodes", "--as=carol", f"--as-group=agg-{v}") == "no"
    ok(kubectl("delete", "namespace", ns))
