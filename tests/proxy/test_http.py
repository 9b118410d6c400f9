"""The proxy at the HTTP level: identity headers, Status errors, rate limit, fuzzing, GET /kubectl/config."""

from __future__ import annotations

import json
import socket
import ssl
import string
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nautilus.conftest import Chain, Master
from proxy.conftest import Admin, Identity

from k3sdaas.errors import InvalidInput
from k3sdaas.nautilus.config import load_config

WHOAMI = "/k8s/apis/authentication.k8s.io/v1/selfsubjectreviews"
REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


def bearer(session: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {session}"}


def is_status(response: httpx.Response, code: int, reason: str) -> dict[str, Any]:
    assert response.status_code == code, response.text
    body = response.json()
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["reason"] == reason and \
        body["code"] == code, body
    return body  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def sessions(proxied_master: Master, identities: dict[str, Identity]) -> dict[str, str]:
    return {tier: proxied_master.login(who.signer, who.token_id) for tier, who in identities.items()}


def test_client_identity_headers_gain_nothing(proxied_master: Master, identities: dict[str, Identity],
                                              sessions: dict[str, str], cluster: Admin) -> None:
    forged = [("Authorization", f"Bearer {sessions['viewer']}"),
              ("Impersonate-User", "system:admin"), ("impersonate-group", "system:masters"),
              ("IMPERSONATE-GROUP", "k3sdaas:admin"), ("Impersonate-Uid", "0"),
              ("Impersonate-Extra-Scopes", "all"), ("impersonate-extra-reason%2fwith%25slash", "x"),
              ("X-Remote-User", "system:admin"), ("X-Remote-Group", "system:masters"),
              ("Connection", "keep-alive, X-Sneaky"), ("X-Sneaky", "hop")]
    response = proxied_master.client.post(WHOAMI, json=REVIEW, headers=forged)
    assert response.status_code == 201, response.text
    info = response.json()["status"]["userInfo"]  # what the API server saw: no uid, no extra, no forged group
    assert info == {"username": f"sui:{identities['viewer'].signer.address}",
                    "groups": ["k3sdaas:viewer", "system:authenticated"]}
    create = proxied_master.client.post("/k8s/api/v1/namespaces/dev/configmaps", headers=forged,
                                        json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "forged"}})
    is_status(create, 403, "Forbidden")
    assert cluster.call("GET", "/api/v1/namespaces/dev/configmaps/forged").status_code == 404
    # a second Authorization (the cluster-admin's own token) is refused by nginx before anything is decided
    twice = proxied_master.client.post(WHOAMI, json=REVIEW, headers=[*forged, ("authorization",
                                                                                f"Bearer {cluster.token}")])
    is_status(twice, 400, "BadRequest")


def test_cached_admission_never_widens_a_tier(proxied_master: Master, sessions: dict[str, str]) -> None:
    """A viewer's admitted GET is cached (per session, method and path): the POST, DELETE and exec on the same
    path right after are still decided, and refused."""
    client, viewer = proxied_master.client, bearer(sessions["viewer"])
    path = "/k8s/api/v1/namespaces/dev/configmaps"
    for _ in range(3):
        assert client.get(path, headers=viewer).status_code == 200
        is_status(client.post(path, headers=viewer, json={"metadata": {"name": "no"}}), 403, "Forbidden")
        is_status(client.delete(path, headers=viewer), 403, "Forbidden")
        is_status(client.post("/k8s/api/v1/namespaces/dev/pods/web/exec?command=ls", headers=viewer), 403,
                  "Forbidden")
    # another session (another identity) never rides on the viewer's cached answer
    is_status(client.get(path, headers=bearer(sessions["viewer"] + "x")), 401, "Unauthorized")


def test_nginx_fronts_the_master_with_its_attested_certificate(proxied_master: Master) -> None:
    """One TLS endpoint: nginx serves the master's own certificate (the attestation binds its SPKI), TLS 1.3
    only, and forwards the master's routes to granian on its Unix socket."""
    context = ssl.create_default_context(cafile=str(proxied_master.cert))
    host, port = proxied_master.url.removeprefix("https://").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
        assert tls.version() == "TLSv1.3"
        served = tls.getpeercert(binary_form=True)
    assert served == ssl.PEM_cert_to_DER_cert(proxied_master.cert.read_text())
    assert proxied_master.client.get("/health").json()["status"] == "ok"
    front = proxied_master.state / "front"
    assert (front / "master.sock").is_socket() and (front / "nginx.pid").exists()
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(str(proxied_master.cert))
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection((host, int(port))) as raw, pytest.raises(ssl.SSLError):
        old.wrap_socket(raw, server_hostname=host)


def test_cached_admissions_still_end_within_5_s_of_a_slash(fuzz_master: Master, chain: Chain) -> None:
    """With a rate limit high enough for nginx to cache admissions, a slashed session is refused within 5 s."""
    owner, token = chain.stake(0.5)
    session = fuzz_master.login(owner, token.token_id)
    path = "/k8s/api/v1/namespaces/dev/pods"
    assert all(fuzz_master.client.get(path, headers=bearer(session)).status_code == 200 for _ in range(5))
    assert any((fuzz_master.state / "front" / "authz").iterdir()), "the admission was not cached"
    chain.slash(token.token_id, 2000)
    slashed = time.monotonic()
    while (response := fuzz_master.client.get(path, headers=bearer(session))).status_code == 200:
        assert time.monotonic() - slashed < 5, "a cached admission outlived the 5 s revocation promise"
        time.sleep(0.05)
    assert "slashed below tier 1" in is_status(response, 401, "Unauthorized")["message"]


def test_every_proxied_request_is_one_audit_record(fuzz_master: Master, identities: dict[str, Identity],
                                                   fuzz_sessions: dict[str, str]) -> None:
    """nginx's line per request (cached admissions included) becomes the audit record: identity and tier from
    the decision, status from the API server."""
    path = f"/k8s/api/v1/namespaces/dev/configmaps/audited-{uuid.uuid4().hex[:8]}"
    statuses = [fuzz_master.client.get(path, headers=bearer(fuzz_sessions["viewer"])).status_code for _ in range(5)]
    statuses.append(fuzz_master.client.delete(path, headers=bearer(fuzz_sessions["viewer"])).status_code)
    assert statuses == [404] * 5 + [403]
    deadline = time.monotonic() + 10
    while True:
        records = [json.loads(line) for line in (fuzz_master.state / "audit.log").read_text().splitlines()
                   if f'"{path}"' in line]
        if len(records) >= 6 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(r["verb"], r["status"]) for r in records] == [("GET", 404)] * 5 + [("DELETE", 403)]
    assert {(r["identity"], r["tier"]) for r in records} == {(f"sui:{identities['viewer'].signer.address}", 1)}
    assert len({r["request_id"] for r in records}) == 6


def test_refusals_are_kubernetes_status_objects(proxied_master: Master, sessions: dict[str, str]) -> None:
    client = proxied_master.client
    assert "send the session" in is_status(client.get("/k8s/api/v1/pods"), 401, "Unauthorized")["message"]
    is_status(client.get("/k8s/api/v1/pods", headers=bearer("not-a-session")), 401, "Unauthorized")
    is_status(client.get("/api/v1/namespaces", headers=bearer(sessions["viewer"][:-2] + "xx")), 401, "Unauthorized")
    denied = is_status(client.delete("/k8s/api/v1/namespaces/dev/pods", headers=bearer(sessions["viewer"])),
                       403, "Forbidden")
    assert "cannot deletecollection resource \"pods\"" in denied["message"]
    is_status(client.post("/k8s/api/v1/namespaces/dev/configmaps", headers=bearer(sessions["admin"]),
                          content=b"x" * (3 * 1024 * 1024 + 1)), 413, "RequestEntityTooLarge")
    # the root paths reach the API server too, and the master's own routes stay the master's
    assert client.get("/version", headers=bearer(sessions["viewer"])).json()["major"] == "1"
    assert client.get("/apis", headers=bearer(sessions["viewer"])).json()["kind"] == "APIGroupList"
    assert "nodes" in client.get("/api/v1/nodes", headers=bearer(sessions["viewer"])).json()


def test_rate_limit_refuses_the_101st_request_in_a_minute(proxied_master: Master, chain: Chain,
                                                          sessions: dict[str, str]) -> None:
    signer, token = chain.stake(0.5)
    session = proxied_master.login(signer, token.token_id)
    client = proxied_master.client
    statuses = [client.get("/k8s/version", headers=bearer(session)).status_code for _ in range(100)]
    assert statuses == [200] * 100
    refused = client.get("/k8s/api/v1/pods", headers=bearer(session))
    body = is_status(refused, 429, "TooManyRequests")
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 60 and body["details"]["retryAfterSeconds"] == wait
    # another identity is not affected
    assert proxied_master.client.get("/k8s/version", headers=bearer(sessions["developer"])).status_code == 200


def test_rate_limit_setting_is_bounded() -> None:
    env = {"K3SDAAS_PACKAGE_ID": "0x2"}
    assert load_config(env={**env, "K3SDAAS_NAUTILUS_RATE_LIMIT": "250"}).rate_limit == 250
    for bad in ("0", "-1", "many", "1000001"):
        with pytest.raises(InvalidInput, match="rate_limit"):
            load_config(env={**env, "K3SDAAS_NAUTILUS_RATE_LIMIT": bad})


def test_unreachable_api_server_is_a_502_status(make_master: Callable[..., Master], identities: dict[str, Identity],
                                               tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kubeconfig = tmp_path / "dead.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": f"https://127.0.0.1:{port}",
                                                  "insecure-skip-tls-verify": True}}],
        "users": [{"name": "dead", "user": {"token": "x"}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "dead"}}]}))
    master = make_master(k3s={"kubeconfig": str(kubeconfig)})
    viewer = identities["viewer"]
    response = master.client.get("/k8s/api/v1/pods", headers=bearer(master.login(viewer.signer, viewer.token_id)))
    assert "unreachable" in is_status(response, 502, "InternalError")["message"]


def test_kubectl_config_validates_its_query(proxied_master: Master, identities: dict[str, Identity]) -> None:
    client = proxied_master.client
    for params, field in (({}, "token_id"), ({"token_id": "0xzz"}, "token_id"),
                          ({"token_id": identities["viewer"].token_id, "api_version": "v2"}, "api_version"),
                          ({"token_id": identities["viewer"].token_id, "key_file": "a\nb"}, "key_file"),
                          ({"token_id": identities["viewer"].token_id, "url": "http://plain:80"}, "url"),
                          ({"token_id": identities["viewer"].token_id, "url": "https://h/with/path"}, "url")):
        response = client.get("/kubectl/config", params=params)
        assert response.status_code == 400 and response.json()["field"] == field, response.text
    config = yaml.safe_load(client.get("/kubectl/config", params={"token_id": identities["viewer"].token_id}).text)
    user = config["users"][0]["user"]["exec"]
    assert config["clusters"][0]["cluster"]["server"] == proxied_master.url + "/k8s"
    assert user["apiVersion"] == "client.authentication.k8s.io/v1" and user["interactiveMode"] == "Never"
    assert user["provideClusterInfo"] is False and user["command"] == "k3sdaas-kubectl-auth"
    assert user["args"][user["args"].index("--key-file") + 1] == "~/.sui/sui_config/sui.keystore"
    assert "--url" not in user["args"]
    # reached elsewhere (a published port): the server and --url move, the audience stays the master's URL
    elsewhere = yaml.safe_load(client.get("/kubectl/config", params={"token_id": identities["viewer"].token_id,
                                                                     "url": "https://localhost:16443"}).text)
    args = elsewhere["users"][0]["user"]["exec"]["args"]
    assert elsewhere["clusters"][0]["cluster"]["server"] == "https://localhost:16443/k8s"
    assert args[args.index("--url") + 1] == "https://localhost:16443"
    assert args[args.index("--server") + 1] == proxied_master.url


PATH_PARTS = st.sampled_from(["api", "apis", "v1", "namespaces", "dev", "pods", "web", "exec", "log", "status",
                              "watch", "proxy", "apps", "deployments", "..", "%2e%2e", "%00", "a b", "configmaps"])
HEADER_NAMES = st.sampled_from(["Impersonate-User", "Impersonate-Group", "Impersonate-Uid", "Impersonate-Extra-X",
                                "Content-Type", "Accept", "Connection", "Upgrade", "Content-Encoding", "X-Remote-User"])
TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-_.:/=%;, ", max_size=40).map(str.strip)


@pytest.fixture(scope="module")
def fuzz_master(make_master: Callable[..., Master], cluster: Admin) -> Master:
    return make_master(auth={"rate_limit": 100_000})


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
       root=st.sampled_from(["/k8s", "/api", "/apis", "/version", "/openapi"]), parts=st.lists(PATH_PARTS, max_size=6),
       query=TEXT, headers=st.lists(st.tuples(HEADER_NAMES, TEXT), max_size=4), body=st.binary(max_size=300),
       tier=st.sampled_from(["viewer", "developer", "admin", None]))
def test_fuzzing_finds_no_5xx(fuzz_master: Master, identities: dict[str, Identity], fuzz_sessions: dict[str, str],
                              method: str, root: str, parts: list[str], query: str, headers: list[tuple[str, str]],
                              body: bytes, tier: str | None) -> None:
    sent = [*headers, *(bearer(fuzz_sessions[tier]).items() if tier else [])]
    path = (root + "/" + "/".join(parts)) if parts else root
    try:
        response = fuzz_master.client.request(method, path, params=query, headers=sent, content=body)
    except httpx.LocalProtocolError:  # h11 would not send it: nothing reached the master
        return
    assert response.status_code < 500, (method, path, response.status_code, response.text[:300])


@pytest.fixture(scope="module")
def fuzz_sessions(fuzz_master: Master, identities: dict[str, Identity]) -> dict[str, str]:
    return {tier: fuzz_master.login(who.signer, who.token_id) for tier, who in identities.items()}
