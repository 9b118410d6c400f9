"""Attestation, health, metrics, OpenAPI, request limits, restarts and start-up errors of the master."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from k3sdaas.attestation import PcrPolicy, verify_attestation
from k3sdaas.nautilus.keys import ENCRYPTION_CONTEXT, FileKeyProvider
from k3sdaas.nautilus.store import StateStore
from k3sdaas_localnet.nitro.pki import SimulatedPki

from .conftest import Chain, Master, master_settings, start_master


def served_spki_sha256(master: Master) -> bytes:
    host, port = master.url.removeprefix("https://").rsplit(":", 1)
    pem = ssl.get_server_certificate((host, int(port)))
    cert = x509.load_pem_x509_certificate(pem.encode())
    return hashlib.sha256(cert.public_key().public_bytes(serialization.Encoding.DER,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo)).digest()


def test_the_attestation_binds_the_enclave_key_and_the_served_tls_key(master: Master, chain: Chain,
                                                                      nsm_socket: tuple[str, SimulatedPki]) -> None:
    response = master.client.post("/api/v1/attestation", json={"nonce": "00ff" * 8})
    assert response.status_code == 200, response.text
    body = response.json()
    for name in ("enclave_id", "measurement", "signature", "certificate", "tee_type", "security_level"):
        assert body[name], name
    verified = verify_attestation(base64.b64decode(body["document"]), root=nsm_socket[1].root.cert,
                                  policy=PcrPolicy(), nonce=bytes.fromhex("00ff" * 8),
                                  public_key=bytes.fromhex(body["enclave_public_key"]),
                                  user_data=served_spki_sha256(master))
    assert verified.document.public_key == bytes.fromhex(body["enclave_public_key"])
    assert body["measurement"] == verified.document.pcrs[0].hex()
    # Sessions are signed by exactly the attested key.
    owner, token = chain.stake(1)
    session = master.login(owner, token.token_id)
    header, payload, signature = session.split(".")
    key = ed25519.Ed25519PublicKey.from_public_bytes(verified.document.public_key)
    key.verify(base64.urlsafe_b64decode(signature + "=="), f"{header}.{payload}".encode())
    # Without a nonce: the cached document of the last refresh, the same key binding.
    cached = master.client.post("/api/v1/attestation").json()
    assert cached["nonce"] is None and cached["public_key"] == body["enclave_public_key"]


def test_attestation_without_an_nsm_is_a_503_with_the_reason(make_master: Callable[..., Master],
                                                            tmp_path: Path) -> None:
    master = make_master(tee={"nsm_socket": str(tmp_path / "absent.sock")})
    response = master.client.post("/api/v1/attestation")
    assert response.status_code == 503
    assert response.json()["error"] == "attestation_unavailable"
    assert "absent.sock" in response.json()["reason"]
    assert master.get("/health").status_code == 200  # the rest of the service runs


def test_health_metrics_and_openapi(master: Master, chain: Chain) -> None:
    deadline = time.time() + 10  # the chain follower's first read follows the start
    while not (health := master.get("/health").json())["chain"]["available"]:
        assert time.time() < deadline, health
        time.sleep(0.1)
    assert health["status"] == "ok" and health["chain"]["error"] is None
    assert re.fullmatch(r"0x[0-9a-f]{64}", health["chain"]["address"])  # the payer of audit anchors, to fund
    owner, token = chain.stake(1)
    master.login(owner, token.token_id)
    text = master.get("/metrics").text
    assert 'nautilus_logins_total{kind="user",outcome="ok"}' in text
    assert 'nautilus_http_requests_total{route="/api/v1/auth",status="200"}' in text
    assert "nautilus_chain_available 1.0" in text
    spec = master.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert {"/api/v1/auth", "/api/v1/register-worker", "/api/v1/nodes/heartbeat"} <= set(spec["paths"])


def test_unknown_paths_methods_and_bodies_get_json_errors(master: Master) -> None:
    cases = [
        master.client.get("/nope"),
        master.client.put("/health"),  # (/api/* beyond these routes is the Kubernetes API proxy)
        master.client.post("/api/v1/auth", content=b"{not json"),
        master.client.post("/api/v1/auth", json=[1, 2]),
        master.client.post("/api/v1/auth", json={"token_id": 5}),
        master.client.post("/api/v1/auth", content=b"x" * (65 * 1024)),
        master.client.post("/api/v1/attestation", json={"nonce": "zz"}),
    ]
    assert [c.status_code for c in cases] == [404, 405, 400, 400, 400, 413, 400]
    for response in cases:
        assert response.headers["content-type"] == "application/json"
        assert set(response.json()) >= {"error", "message"}
    assert cases[4].json()["field"] == "token_id"


def test_a_restart_keeps_nodes_nonces_and_revocations(make_master: Callable[..., Master], chain: Chain,
                                                      tmp_path: Path, kube: Path) -> None:
    state = tmp_path / "state"
    master = make_master(state)
    owner, token = chain.stake(1)
    body = {**master.proof(owner, token.token_id), "node_id": token.node_id, "ip": "10.1.0.1"}
    assert master.client.post("/api/v1/register-worker", json=body).status_code == 200
    pending = master.proof(owner, token.token_id)  # a challenge issued before the restart
    used = master.proof(owner, token.token_id)
    assert master.client.post("/api/v1/auth", json=used).status_code == 200
    slashed_owner, slashed = chain.stake(0.5)
    session = master.login(slashed_owner, slashed.token_id)
    chain.slash(slashed.token_id, 5000)
    while master.get("/api/v1/security-context", session).status_code != 401:
        pass
    assert master.stop() == 0  # graceful: SIGTERM, lifespan shutdown, exit 0
    with StateStore(state / "state.db", FileKeyProvider(state / "state.key")) as store:
        assert "slashed below tier 1" in store.revocations()[slashed.token_id]

    settings = yaml.safe_load((state / "nautilus-config.yaml").read_text())
    settings["server"]["listen_port"] = int(master.url.rsplit(":", 1)[1])  # the same audience as before
    again = start_master(state, settings)
    try:
        assert again.client.post("/api/v1/auth", json=pending).status_code == 200
        replay = again.client.post("/api/v1/auth", json=used)
        assert (replay.status_code, replay.json()["error"]) == (401, "nonce_invalid")
        viewer = again.login(owner, token.token_id)
        nodes = again.get("/api/v1/nodes", viewer).json()["nodes"]
        assert [n["ip"] for n in nodes if n["node_id"] == token.node_id] == ["10.1.0.1"]
        assert (state / "chain-cursor.json").exists()  # the follower resumes after the last event it read
        refused = again.client.post("/api/v1/auth", json=again.proof(slashed_owner, slashed.token_id))
        assert (refused.status_code, refused.json()["error"]) == (403, "token_slashed")
    finally:
        again.stop()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "k3sdaas.nautilus", *args], capture_output=True, text=True,
                          timeout=60, env=env, check=False)


def test_bad_settings_exit_1_with_one_line_naming_the_setting(tmp_path: Path) -> None:
    cases = {
        "sui:\n  package_id: 0x1\nauth:\n  session_ttl: forever\n": "session_ttl",
        "sui:\n  package_id: 0x1\nauth:\n  session_ttl: 999999999\n": "session_ttl",
        "auth:\n  min_tier: 2\n": "package_id",
        "sui:\n  package_id: nothex\n": "package_id",
        "bogus:\n  x: 1\n": "bogus",
        "- a list\n": "mapping",
    }
    for text, named in cases.items():
        config = tmp_path / "nautilus-config.yaml"
        config.write_text(text)
        result = run_cli("serve", "--config", str(config), env={"PATH": "/usr/bin:/bin"})
        assert result.returncode == 1, text
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and named in lines[0], (text, result.stderr)
    missing = run_cli("serve", "--config", str(tmp_path / "absent.yaml"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr


_spec = importlib.util.spec_from_file_location("aws_conftest", Path(__file__).parents[1] / "aws" / "conftest.py")
assert _spec and _spec.loader
_aws = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_aws)
endpoint = _aws.endpoint  # the project's moto server fixture (module scoped)


def test_the_state_key_can_come_from_kms(endpoint: str, chain: Chain, kube_dir: Path,
                                         nsm_socket: tuple[str, SimulatedPki], tmp_path: Path) -> None:
    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
    kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing", aws_session_token="testing")
    key_id = kms.create_key(Description="nautilus state")["KeyMetadata"]["KeyId"]
    state = tmp_path / "kms-state"
    settings = master_settings(chain, kube_dir, nsm_socket[0], state,
                               state={"kms_key_id": key_id, "kms_endpoint_url": endpoint, "kms_region": "us-east-1"})
    master = start_master(state, settings, env=credentials)
    try:
        owner, token = chain.stake(1)
        assert master.client.post("/api/v1/auth", json=master.proof(owner, token.token_id)).status_code == 200
    finally:
        assert master.stop() == 0
    assert (state / "state.db.kms-key").exists() and not (state / "state.key").exists()
    wrapped = (state / "state.db.kms-key").read_bytes()
    assert len(kms.decrypt(CiphertextBlob=wrapped, EncryptionContext=ENCRYPTION_CONTEXT)["Plaintext"]) == 32
