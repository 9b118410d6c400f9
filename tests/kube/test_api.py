"""The stand-in through the ``kubernetes`` Python client and raw HTTP: auth, RBAC, conflicts, limits, restart."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

from .conftest import Kube, register_node, renew_lease, start_kube, stop_kube


@pytest.fixture
def core(kube: Kube) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(kube.kubeconfig)))


def bootstrap_secret(token_id: str, secret: str, expires: dt.datetime) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
            "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
            "stringData": {"token-id": token_id, "token-secret": secret, "usage-bootstrap-authentication": "true",
                           "expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "auth-extra-groups": "system:bootstrappers:k3s:default-node-token"}}


def whoami(kube: Kube, token: str) -> tuple[int, dict]:
    return kube.call("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                     {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, token=token)


def test_bootstrap_tokens(kube: Kube, core: client.CoreV1Api) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    core.create_namespaced_secret("kube-system", bootstrap_secret("abcdef", "0123456789abcdef", later))
    status, review = whoami(kube, "abcdef.0123456789abcdef")
    assert status == 201
    assert review["status"]["userInfo"] == {"username": "system:bootstrap:abcdef", "groups": [
        "system:bootstrappers", "system:bootstrappers:k3s:default-node-token", "system:authenticated"]}
    # the node group may register a node (system:node is bound to it), not read secrets elsewhere
    assert kube.call("GET", "/api/v1/nodes", token="abcdef.0123456789abcdef")[0] == 200
    denied = kube.call("GET", "/api/v1/namespaces/default/serviceaccounts", token="abcdef.0123456789abcdef")
    assert denied[0] == 403 and denied[1]["reason"] == "Forbidden"
    for token in ("abcdef.0123456789abcdeX", "abcdef.ffffffffffffffff", "zzzzzz.0123456789abcdef", "garbage", ""):
        status, body = whoami(kube, token)
        assert (status, body["reason"], body["kind"]) == (401, "Unauthorized", "Status"), token
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    core.create_namespaced_secret("kube-system", bootstrap_secret("expird", "0123456789abcdef", earlier))
    assert whoami(kube, "expird.0123456789abcdef")[0] == 401
    core.delete_namespaced_secret("bootstrap-token-abcdef", "kube-system")
    assert whoami(kube, "abcdef.0123456789abcdef")[0] == 401


def test_crud_conflict_and_watch_with_the_python_client(kube: Kube, core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "py"}})
    with pytest.raises(ApiException) as exists:
        core.create_namespace({"metadata": {"name": "py"}})
    assert exists.value.status == 409 and json.loads(exists.value.body)["reason"] == "AlreadyExists"
    made = core.create_namespaced_config_map("py", {"metadata": {"generateName": "cfg-", "labels": {"tier": "a"}},
                                                    "data": {"k": "v"}})
    name = made.metadata.name
    assert name.startswith("cfg-") and len(name) == 9 and made.metadata.uid and made.metadata.creation_timestamp
    stale = made.metadata.resource_version
    made.data = {"k": "w"}
    updated = core.replace_namespaced_config_map(name, "py", made)
    assert int(updated.metadata.resource_version) > int(stale)
    made.metadata.resource_version = stale
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map(name, "py", made)
    assert conflict.value.status == 409 and "the object has been modified" in json.loads(conflict.value.body)["message"]
    core.create_namespaced_config_map("py", {"metadata": {"name": "other", "labels": {"tier": "b"}}})
    tier_a = core.list_namespaced_config_map("py", label_selector="tier in (a)").items
    assert [c.metadata.name for c in tier_a] == [name]
    assert [c.metadata.name for c in core.list_namespaced_config_map("py", field_selector="metadata.name!=other",
                                                                     label_selector="tier").items] == [name]
    patched = core.patch_namespaced_config_map(name, "py", [{"op": "add", "path": "/data/j", "value": "1"}])
    assert patched.data == {"k": "w", "j": "1"}
    listed = core.list_namespaced_config_map("py")
    events = []
    w = watch.Watch()
    core.delete_namespaced_config_map("other", "py")
    for event in w.stream(core.list_namespaced_config_map, "py", resource_version=listed.metadata.resource_version,
                          timeout_seconds=5):
        events.append((event["type"], event["object"].metadata.name))
        if event["type"] == "DELETED":
            w.stop()
    assert events == [("DELETED", "other")]
    with pytest.raises(ApiException) as missing:
        core.create_namespaced_config_map("nowhere", {"metadata": {"name": "x"}})
    assert missing.value.status == 404 and json.loads(missing.value.body)["message"] == 'namespaces "nowhere" not found'


def test_exec_websocket_through_the_python_client(kube: Kube, core: client.CoreV1Api) -> None:
    register_node(kube, "py-exec-node")
    core.create_namespaced_pod("default", {"metadata": {"name": "py-shell"},
                                           "spec": {"containers": [{"name": "main", "image": "busybox"}]}})
    response = stream(core.connect_get_namespaced_pod_exec, "py-shell", "default", command=["ls"], stderr=True,
                      stdout=True, _preload_content=False)
    response.run_forever(timeout=10)
    assert "no container runs" in response.read_stderr()
    assert response.returncode == 126  # from the Status on the error channel


def test_bad_inputs_answer_4xx_status(kube: Kube) -> None:
    cases = [
        ("POST", "/api/v1/namespaces", {"raw": b"{not json"}, 400),
        ("POST", "/api/v1/namespaces", {"raw": b"k8s\x00\x0a\x02\x12\x00", "content_type":
                                        "application/vnd.kubernetes.protobuf"}, 400),
        ("POST", "/api/v1/namespaces", {"raw": b"<xml/>", "content_type": "application/xml"}, 415),
        ("POST", "/api/v1/namespaces", {"body": {"metadata": {"name": "Bad_Name"}}}, 422),
        ("POST", "/api/v1/namespaces", {"body": {"kind": "Pod", "metadata": {"name": "x"}}}, 400),
        ("POST", "/api/v1/namespaces", {"body": ["a list"]}, 400),
        ("POST", "/api/v1/namespaces/default/pods", {"body": {"metadata": {"name": "nocontainers"}}}, 422),
        ("GET", "/api/v1/widgets", {}, 404),
        ("GET", "/apis/nope.example.com/v1/things", {}, 404),
        ("GET", "/api/v1/pods?labelSelector=a%20in%20(", {}, 400),
        ("PATCH", "/api/v1/namespaces/default", {"body": {}, "content_type": "text/plain"}, 415),
        ("DELETE", "/version", {}, 405),
        ("OPTIONS", "/api/v1/nodes/x/status", {}, 405),
        ("PUT", "/api/v1/namespaces/default/pods", {"body": {}}, 405),
        ("GET", "/api/v1/namespaces/default/pods?watch=true&resourceVersion=abc", {}, 400),
    ]
    for method, path, kwargs, code in cases:
        status, body = kube.call(method, path, **kwargs)
        assert status == code, (method, path, status, body)
        assert body["kind"] == "Status" and body["code"] == code, body
    assert kube.call("GET", "/api/v1/pods", token="wrong")[1]["reason"] == "Unauthorized"
    assert kube.call("GET", "/ping", token="") == (200, "pong")
    assert kube.call("GET", "/cacerts", token="")[1] == (kube.state / "ca.pem").read_text()


def test_a_huge_body_is_refused_before_it_is_read(kube: Kube) -> None:
    host, port = kube.url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            kube.context().wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(f"POST /api/v1/namespaces HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {kube.token}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {64 * 1024 * 1024}\r\n\r\n".encode())
        tls.sendall(b"{" * 65536)
        answer = b""
        while not answer.endswith(b"}") and (chunk := tls.recv(65536)):
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b'"reason":"RequestEntityTooLarge"' in body


def test_impersonating_extras_needs_each_grant(kube: Kube, core: client.CoreV1Api) -> None:
    rbac = client.RbacAuthorizationV1Api(core.api_client)
    rbac.create_cluster_role({"metadata": {"name": "imp-users"}, "rules": [
        {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["carol"]},
        {"apiGroups": ["authentication.k8s.io"], "resources": ["userextras/scopes"], "verbs": ["impersonate"]}]})
    rbac.create_cluster_role_binding({"metadata": {"name": "imp-users"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "imp-users"},
        "subjects": [{"kind": "User", "name": "system:bootstrap:imprsn"}]})
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    core.create_namespaced_secret("kube-system", bootstrap_secret("imprsn", "0123456789abcdef", later))
    token = "imprsn.0123456789abcdef"
    status, review = kube.call("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {}, token=token,
                               headers={"Impersonate-User": "carol", "Impersonate-Extra-Scopes": "a"})
    assert status == 201 and review["status"]["userInfo"] == {"username": "carol", "groups": ["system:authenticated"],
                                                              "extra": {"scopes": ["a"]}}
    for headers, text in (({"Impersonate-User": "dave"}, 'users "dave" is forbidden'),
                          ({"Impersonate-User": "carol", "Impersonate-Group": "g"}, 'groups "g" is forbidden'),
                          ({"Impersonate-User": "carol", "Impersonate-Extra-Reason": "x"},
                           'userextras/reason "x" is forbidden'),
                          ({"Impersonate-User": "system:serviceaccount:kube-system:robot"},
                           'serviceaccounts "robot" is forbidden: User "system:bootstrap:imprsn" cannot impersonate '
                           'resource "serviceaccounts" in API group "" in the namespace "kube-system"')):
        status, body = kube.call("GET", "/api/v1/namespaces", token=token, headers=headers)
        assert status == 403 and body["message"].startswith(text), body
    status, body = kube.call("GET", "/api/v1/namespaces", token=token, headers={"Impersonate-Group": "g"})
    assert status == 400 and body["kind"] == "Status"


def test_nodes_turn_not_ready_and_state_survives_restart(tmp_path: Path) -> None:
    kube = start_kube(tmp_path / "state", "--node-grace-seconds", "2")
    try:
        register_node(kube, "fading")
        register_node(kube, "steady")
        assert kube.call("POST", "/api/v1/namespaces", {"metadata": {"name": "kept"}})[0] == 201
        for _ in range(8):
            time.sleep(0.5)
            renew_lease(kube, "steady")
        ready = {n["metadata"]["name"]: next(c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready")
                 for n in kube.call("GET", "/api/v1/nodes")[1]["items"]}
        assert ready == {"fading": "Unknown", "steady": "True"}
        ca = (kube.state / "ca.pem").read_bytes()
    finally:
        stop_kube(kube)
    assert not (tmp_path / "state" / "admin.kubeconfig").exists()
    kube = start_kube(tmp_path / "state")
    try:
        assert (kube.state / "ca.pem").read_bytes() == ca
        assert kube.call("GET", "/api/v1/namespaces/kept")[0] == 200
        assert {n["metadata"]["name"] for n in kube.call("GET", "/api/v1/nodes")[1]["items"]} == {"fading", "steady"}
        # the change log is not kept across a restart: an old resourceVersion gets 410, the client lists again
        status, event = kube.call("GET", "/api/v1/namespaces?watch=true&resourceVersion=2&timeoutSeconds=2")
        assert status == 200 and event["type"] == "ERROR" and event["object"]["code"] == 410
    finally:
        stop_kube(kube)


def test_bookmarks_only_when_asked_and_pods_of_a_deleted_node_go(kube: Kube) -> None:
    path = "/apis/coordination.k8s.io/v1/namespaces/kube-public/leases?watch=true&timeoutSeconds=6"
    status, quiet = kube.call("GET", path)
    assert (status, quiet) == (200, "")  # nothing changed, no bookmark asked for: an empty stream
    status, marked = kube.call("GET", path + "&allowWatchBookmarks=true")
    first = json.loads(marked.splitlines()[0]) if isinstance(marked, str) else marked
    assert first["type"] == "BOOKMARK" and first["object"]["kind"] == "Lease"
    assert int(first["object"]["metadata"]["resourceVersion"]) > 0
    register_node(kube, "doomed")
    pod = {"metadata": {"name": "on-doomed"}, "spec": {"nodeSelector": {"kubernetes.io/hostname": "doomed"},
                                                       "containers": [{"name": "c", "image": "i"}]}}
    kube.call("PATCH", "/api/v1/nodes/doomed", {"metadata": {"labels": {"kubernetes.io/hostname": "doomed"}}},
              content_type="application/merge-patch+json")
    assert kube.call("POST", "/api/v1/namespaces/default/pods", pod)[0] == 201
    for _ in range(40):
        if kube.call("GET", "/api/v1/namespaces/default/pods/on-doomed")[1]["spec"].get("nodeName") == "doomed":
            break
        time.sleep(0.25)
    assert kube.call("DELETE", "/api/v1/nodes/doomed")[0] == 200
    for _ in range(40):
        if kube.call("GET", "/api/v1/namespaces/default/pods/on-doomed")[0] == 404:
            break
        time.sleep(0.25)
    assert kube.call("GET", "/api/v1/namespaces/default/pods/on-doomed")[0] == 404


def test_cli_refuses_a_taken_port_and_bad_flags_without_touching_state(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for args, code in ((["--port", port], 1), (["--port", "70000"], 2), (["--node-grace-seconds", "0"], 2)):
            result = subprocess.run([sys.executable, "-m", "k3sdaas_localnet", "kube", "--state",
                                     str(tmp_path / "state"), *args], capture_output=True, text=True, timeout=60,
                                    check=False)
            assert result.returncode == code, result.stderr
            assert result.stderr.strip().splitlines()[-1].startswith("k3sdaas-localnet kube")
            assert not (tmp_path / "state").exists()
