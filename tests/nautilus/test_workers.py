"""Worker registration (seal proof + bootstrap join token through the Kubernetes API), heartbeats, nodes."""

from __future__ import annotations

import hashlib
import re
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Chain, Master, new_signer

JOIN_TOKEN = re.compile(r"K10([0-9a-f]{64})::([a-z0-9]{6})\.([a-z0-9]{16})")


def register(master: Master, chain: Chain, node_id: str | None = None, **extra: Any) -> tuple[httpx.Response, Any]:
    owner, token = chain.stake(1, node_id=node_id)
    body = {**master.proof(owner, token.token_id), "node_id": token.node_id, "ip": "10.0.0.7",
            "capacity": {"cpu": 2, "memory_mb": 4096}, **extra}
    return master.client.post("/api/v1/register-worker", json=body), token


def kube_get(kube: Path, path: str, token: str | None = None) -> httpx.Response:
    bearer = token or (kube / "admin.token").read_text().strip()
    server = re.search(r"server: (\S+)", (kube / "admin.kubeconfig").read_text())
    assert server
    with httpx.Client(base_url=server.group(1), verify=ssl.create_default_context(cafile=kube / "ca.pem")) as client:
        return client.get(path, headers={"Authorization": f"Bearer {bearer}"})


def test_register_worker_returns_join_material_backed_by_a_bootstrap_token(master: Master, chain: Chain,
                                                                           kube: Path) -> None:
    response, token = register(master, chain)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["node_id"] == token.node_id
    assert body["supervisor_url"].endswith(":6444")
    ca = (kube / "ca.pem").read_text()
    assert body["ca_cert"] == ca
    match = JOIN_TOKEN.fullmatch(body["join_token"])
    assert match, body["join_token"]
    assert match.group(1) == hashlib.sha256(ca.encode()).hexdigest()
    secret = kube_get(kube, f"/api/v1/namespaces/kube-system/secrets/bootstrap-token-{match.group(2)}")
    assert secret.status_code == 200, secret.text
    assert secret.json()["type"] == "bootstrap.kubernetes.io/token"
    expires = datetime.fromisoformat(body["join_token_expires_at"])
    assert 0 < (expires - datetime.now(UTC)).total_seconds() <= 600  # short-lived: 10 minutes by default
    # The API server accepts the token itself as a bootstrap credential.
    whoami = kube_get(kube, "/api/v1/namespaces/default/configmaps", f"{match.group(2)}.{match.group(3)}")
    assert whoami.status_code != 401, whoami.text


def test_a_node_registers_only_with_its_own_token(master: Master, chain: Chain, kube: Path) -> None:
    response, _ = register(master, chain)
    assert response.status_code == 200
    owner, token = chain.stake(1)
    body = {**master.proof(owner, token.token_id), "node_id": "someone-else", "ip": "10.0.0.8"}
    refused = master.client.post("/api/v1/register-worker", json=body)
    assert (refused.status_code, refused.json()["error"]) == (403, "wrong_node")
    thief = new_signer()
    body = {**master.proof(thief, token.token_id), "node_id": token.node_id, "ip": "10.0.0.8"}
    refused = master.client.post("/api/v1/register-worker", json=body)
    assert (refused.status_code, refused.json()["error"]) == (403, "not_owner")


@pytest.mark.parametrize(("change", "field"), [
    ({"ip": "not-an-ip"}, "ip"), ({"node_id": "bad id with spaces"}, "node_id"),
    ({"capacity": {"cpu": [1]}}, "capacity"), ({"capacity": "lots"}, "capacity"),
])
def test_register_worker_names_the_bad_field(master: Master, chain: Chain, change: dict[str, Any],
                                             field: str) -> None:
    owner, token = chain.stake(1)
    body = {**master.proof(owner, token.token_id), "node_id": token.node_id, "ip": "10.0.0.9", **change}
    response = master.client.post("/api/v1/register-worker", json=body)
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_heartbeats_keep_a_node_ready_and_silence_makes_it_not_ready(make_master: Callable[..., Master],
                                                                    chain: Chain, kube: Path) -> None:
    master = make_master(nodes={"heartbeat_grace": 5})
    response, token = register(master, chain)
    session = response.json()["session"]
    beat = master.client.post("/api/v1/nodes/heartbeat", json={"metrics": {"cpu_percent": 12.5, "pods": 3}},
                              headers={"Authorization": f"Bearer {session}"})
    assert beat.status_code == 200, beat.text
    assert beat.json()["status"] == "Ready"
    owner, viewer = chain.stake(1)
    user = master.login(owner, viewer.token_id)

    def status() -> dict[str, Any]:
        nodes = master.get("/api/v1/nodes", user).json()["nodes"]
        return next(n for n in nodes if n["node_id"] == token.node_id)

    node = status()
    assert (node["status"], node["metrics"], node["ip"], node["capacity"]) == \
        ("Ready", {"cpu_percent": 12.5, "pods": 3}, "10.0.0.7", {"cpu": 2, "memory_mb": 4096})
    time.sleep(5.5)
    assert status()["status"] == "NotReady"
    master.client.post("/api/v1/nodes/heartbeat", headers={"Authorization": f"Bearer {session}"})
    assert status()["status"] == "Ready"


def test_heartbeats_need_a_node_session(master: Master, chain: Chain) -> None:
    owner, token = chain.stake(1)
    user = master.login(owner, token.token_id)
    response = master.client.post("/api/v1/nodes/heartbeat", headers={"Authorization": f"Bearer {user}"})
    assert (response.status_code, response.json()["error"]) == (403, "not_a_node")
    anonymous = master.client.post("/api/v1/nodes/heartbeat")
    assert anonymous.status_code == 401
    bad = master.client.post("/api/v1/nodes/heartbeat", json={"metrics": {"cpu": "high"}},
                             headers={"Authorization": f"Bearer {user}"})
    assert bad.status_code in (400, 403)


def test_a_slashed_nodes_heartbeat_is_refused(master: Master, chain: Chain, kube: Path) -> None:
    response, token = register(master, chain)
    session = response.json()["session"]
    chain.slash(token.token_id, 6000)
    deadline = time.time() + 5
    while time.time() < deadline:
        beat = master.client.post("/api/v1/nodes/heartbeat", headers={"Authorization": f"Bearer {session}"})
        if beat.status_code == 401:
            break
        time.sleep(0.1)
    assert beat.status_code == 401
