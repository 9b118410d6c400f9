"""The Kubernetes stand-in's pods/eviction, which unstake's and upgrade's drains post (kubernetes.core.k8s_drain,
kubectl drain): always allowed here (no PodDisruptionBudgets), the pod deleted at once."""

from __future__ import annotations

import uuid

from kube.conftest import Kube


def eviction(name: str, **extra: object) -> dict[str, object]:
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}, **extra}


def new_pod(kube: Kube) -> str:
    name = f"evict-{uuid.uuid4().hex[:8]}"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    assert kube.call("POST", "/api/v1/namespaces/default/pods", pod)[0] == 201
    return name


def test_discovery_lists_the_eviction_subresource(kube: Kube) -> None:
    status, resources = kube.call("GET", "/api/v1")
    assert status == 200
    found = [r for r in resources["resources"] if r["name"] == "pods/eviction"]
    assert found == [{"name": "pods/eviction", "singularName": "", "namespaced": True, "kind": "Eviction",
                      "verbs": ["create"], "group": "policy", "version": "v1"}]


def test_an_eviction_deletes_the_pod(kube: Kube) -> None:
    name = new_pod(kube)
    status, answer = kube.call("POST", f"/api/v1/namespaces/default/pods/{name}/eviction", eviction(name))
    assert (status, answer["kind"], answer["status"]) == (201, "Status", "Success")
    assert kube.call("GET", f"/api/v1/namespaces/default/pods/{name}")[0] == 404
    # The Python client sends the body without kind and apiVersion; kube-apiserver takes them from the URL.
    name = new_pod(kube)
    assert kube.call("POST", f"/api/v1/namespaces/default/pods/{name}/eviction", {"metadata": {"name": name}})[0] == 201
    assert kube.call("GET", f"/api/v1/namespaces/default/pods/{name}")[0] == 404


def test_dry_run_evicts_nothing(kube: Kube) -> None:
    name = new_pod(kube)
    path = f"/api/v1/namespaces/default/pods/{name}/eviction?dryRun=All"
    assert kube.call("POST", path, eviction(name))[0] == 201
    assert kube.call("GET", f"/api/v1/namespaces/default/pods/{name}")[0] == 200


def test_bad_evictions_are_refused(kube: Kube) -> None:
    name = new_pod(kube)
    path = f"/api/v1/namespaces/default/pods/{name}/eviction"
    status, answer = kube.call("POST", path, eviction("another"))
    assert (status, answer["message"]) == (400, "name in URL does not match name in Eviction object")
    status, answer = kube.call("POST", path, {"kind": "Pod", "metadata": {"name": name}})
    assert (status, answer["message"]) == (400, "the body of an eviction must be a policy/v1 Eviction")
    assert kube.call("GET", path)[0] == 405
    assert kube.call("POST", "/api/v1/namespaces/default/pods/missing/eviction", eviction("missing"))[0] == 404
    assert kube.call("GET", f"/api/v1/namespaces/default/pods/{name}")[0] == 200  # still there
