"""Malformed and random bodies for every resource: always a 4xx Status (never 5xx), and the server keeps working."""

from __future__ import annotations

import random
import time
from typing import Any

from k3sdaas_localnet.kube.policy import SHAPES
from k3sdaas_localnet.kube.resources import RESOURCES

from .conftest import Kube

WRONG = [5, "text", True, None, [1, "a"], {"k": 1}, [{"k": [1]}], 1.5, -1, 10**30]


def collection(resource: Any, namespace: str) -> str:
    prefix = f"/apis/{resource.group}/{resource.version}" if resource.group else f"/api/{resource.version}"
    return f"{prefix}/namespaces/{namespace}/{resource.name}" if resource.namespaced else f"{prefix}/{resource.name}"


def nested(path: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(path.split(".")):
        out = {part.removesuffix("[]"): [out] if part.endswith("[]") else out}
    return out


KEYS = ["metadata", "spec", "status", "name", "data", "rules", "x"]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 4 else 4)
    if kind == 0:
        return rng.randint(-2**40, 2**40)
    if kind == 1:
        return rng.choice(["", "a", "ü", "x" * 300, "$patch", "*"])
    if kind == 2:
        return rng.choice([True, False, None, 0.5])
    if kind == 3:
        return rng.random()
    if kind == 4:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(3))]
    if kind == 5:
        return {rng.choice(KEYS): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}
    return {"metadata": {"name": f"r{rng.randrange(10**6)}"}, rng.choice(KEYS[1:]): random_json(rng, depth + 1)}


def test_wrongly_typed_fields_are_refused(kube: Kube) -> None:
    rng = random.Random(3)
    stored = [r for r in RESOURCES if r.stored]
    for resource in stored:
        paths = {**SHAPES["*"], **SHAPES.get(resource.kind, {})}
        for i, path in enumerate(paths):
            for j, value in enumerate(rng.sample(WRONG, 3)):
                body = {"metadata": {"name": f"fuzz-{i}-{j}"}}
                if path.startswith("metadata."):
                    body["metadata"].update(nested(path.removeprefix("metadata."), value))
                else:
                    body.update(nested(path, value))
                status, answer = kube.call("POST", collection(resource, "default"), body)
                assert status < 500, (resource.name, path, value, answer)
                assert status in (201, 400, 422) and (status == 201 or answer["kind"] == "Status"), answer


def test_random_bodies_patches_and_paths(kube: Kube) -> None:
    rng = random.Random(9)
    stored = [r for r in RESOURCES if r.stored]
    for _ in range(250):
        resource = rng.choice(stored)
        base = collection(resource, "default")
        body = random_json(rng)
        method, path, content_type = rng.choice([
            ("POST", base, "application/json"),
            ("PUT", f"{base}/r1", "application/json"),
            ("PATCH", f"{base}/default", "application/merge-patch+json"),
            ("PATCH", f"{base}/default", "application/strategic-merge-patch+json"),
            ("PATCH", f"{base}/default", "application/json-patch+json"),
            ("PATCH", f"{base}/default", "application/apply-patch+yaml"),
        ])
        status, answer = kube.call(method, path, body, content_type=content_type)
        assert status < 500, (method, path, body, answer)
        assert status in (200, 201) or answer["kind"] == "Status", answer
    for _ in range(100):
        junk = "".join(rng.choice("abc/%.:?=&~-_") for _ in range(rng.randrange(1, 40)))
        status, answer = kube.call("GET", f"/api/v1/{junk}")
        assert status < 500, (junk, answer)
    # after all that, every list still renders as a Table and the controllers still schedule
    for resource in stored:
        status, table = kube.call("GET", collection(resource, "default"),
                                  headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
        assert status == 200 and table["kind"] == "Table", (resource.name, table)
    ready = {"type": "Ready", "status": "True", "lastHeartbeatTime": "2999-01-01T00:00:00Z"}
    node = {"metadata": {"name": "fuzz-node"}, "status": {"conditions": [ready]}}
    assert kube.call("POST", "/api/v1/nodes", node)[0] in (201, 409)
    pod = {"metadata": {"name": "after-fuzz"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    assert kube.call("POST", "/api/v1/namespaces/default/pods", pod)[0] == 201
    for _ in range(40):
        if kube.call("GET", "/api/v1/namespaces/default/pods/after-fuzz")[1]["status"]["phase"] == "Running":
            break
        time.sleep(0.25)
    assert kube.call("GET", "/api/v1/namespaces/default/pods/after-fuzz")[1]["status"]["phase"] == "Running"
