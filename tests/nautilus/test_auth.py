"""Challenge, seal login and sessions against a running master: every acceptance and every refusal."""

from __future__ import annotations

import base64
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from k3sdaas.seal import Challenge, sign_personal_message

from .conftest import SUI, Chain, Master, new_signer, publish


def test_login_gives_a_session_naming_address_tier_token_and_expiry(master: Master, chain: Chain) -> None:
    owner, token = chain.stake(2)
    before = time.time()
    response = master.client.post("/api/v1/auth", json=master.proof(owner, token.token_id))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert (body["address"], body["tier"], body["tier_name"], body["token_id"]) == \
        (owner.address, 2, "developer", token.token_id)
    assert before + 14 * 60 < body["expires_at"] <= time.time() + 15 * 60 + 1  # the 15-minute default
    context = master.get("/api/v1/security-context", body["session"])
    assert context.status_code == 200
    assert context.json()["groups"] == ["k3sdaas:developer"]
    assert context.json()["username"] == f"sui:{owner.address}"


def test_challenge_nonces_are_fresh_and_name_the_audience(master: Master) -> None:
    first, second = (master.client.post("/api/v1/challenge").json() for _ in range(2))
    assert first["nonce"] != second["nonce"]
    assert first["audience"] == master.url
    assert first["expires_at_ms"] > first["issued_at"]


def test_a_replayed_proof_is_refused(master: Master, chain: Chain) -> None:
    owner, token = chain.stake(1)
    proof = master.proof(owner, token.token_id)
    assert master.client.post("/api/v1/auth", json=proof).status_code == 200
    replay = master.client.post("/api/v1/auth", json=proof)
    assert replay.status_code == 401
    assert replay.json()["error"] == "nonce_invalid"


def test_a_nonce_the_master_never_issued_is_refused(master: Master, chain: Chain) -> None:
    owner, token = chain.stake(1)
    proof = master.proof(owner, token.token_id, nonce="A" * 32)
    response = master.client.post("/api/v1/auth", json=proof)
    assert (response.status_code, response.json()["error"]) == (401, "nonce_invalid")


def test_a_forged_signature_is_refused(master: Master, chain: Chain) -> None:
    owner, token = chain.stake(1)
    proof = master.proof(owner, token.token_id)
    raw = bytearray(base64.b64decode(proof["signature"]))
    raw[5] ^= 0x01
    proof["signature"] = base64.b64encode(bytes(raw)).decode()
    response = master.client.post("/api/v1/auth", json=proof)
    assert (response.status_code, response.json()["error"]) == (401, "bad_signature")


def test_a_signature_by_another_key_is_refused(master: Master, chain: Chain) -> None:
    owner, token = chain.stake(1)
    proof = master.proof(owner, token.token_id)
    message = Challenge(proof["nonce"], proof["audience"], proof["token_id"], proof["address"],
                        proof["issued_at"]).message()
    proof["signature"] = sign_personal_message(new_signer(), message)
    response = master.client.post("/api/v1/auth", json=proof)
    assert (response.status_code, response.json()["error"]) == (401, "challenge_address")


@pytest.mark.parametrize(("change", "error"), [
    ({"audience": "https://other-master.example:6443"}, "challenge_audience"),
    ({"issued_at_ms": int(time.time() * 1000) - 10 * 60 * 1000}, "challenge_stale"),
    ({"issued_at_ms": int(time.time() * 1000) + 10 * 60 * 1000}, "challenge_future"),
])
def test_a_challenge_for_another_master_or_out_of_time_is_refused(master: Master, chain: Chain,
                                                                  change: dict[str, object], error: str) -> None:
    owner, token = chain.stake(1)
    response = master.client.post("/api/v1/auth", json=master.proof(owner, token.token_id, **change))
    assert (response.status_code, response.json()["error"]) == (401, error)


def test_a_token_of_another_owner_is_refused(master: Master, chain: Chain) -> None:
    _, token = chain.stake(1)
    thief = new_signer()
    response = master.client.post("/api/v1/auth", json=master.proof(thief, token.token_id))
    assert (response.status_code, response.json()["error"]) == (403, "not_owner")


def test_a_token_of_another_pool_is_refused(master: Master, chain: Chain) -> None:
    other = publish(chain.node, chain.operator)
    owner, token = chain.stake(1, deployment=other)
    response = master.client.post("/api/v1/auth", json=master.proof(owner, token.token_id))
    assert (response.status_code, response.json()["error"]) == (403, "token_not_in_pool")


def test_an_unknown_token_is_refused(master: Master) -> None:
    signer = new_signer()
    response = master.client.post("/api/v1/auth", json=master.proof(signer, "0x" + "ab" * 32))
    assert (response.status_code, response.json()["error"]) == (403, "token_not_in_pool")


def test_a_token_slashed_below_tier_one_is_refused(master: Master, chain: Chain) -> None:
    owner, token = chain.stake(0.5)
    assert chain.slash(token.token_id, 1000).tier == 0
    response = master.client.post("/api/v1/auth", json=master.proof(owner, token.token_id))
    assert (response.status_code, response.json()["error"]) == (403, "token_slashed")


def test_an_expired_token_is_refused(make_master: Callable[..., Master], chain: Chain) -> None:
    owner, token = chain.stake(1)
    master = make_master()
    chain.node.advance_clock(token.expires_at_ms - token.chain_time_ms + 1000)
    response = master.client.post("/api/v1/auth", json=master.proof(owner, token.token_id))
    assert (response.status_code, response.json()["error"]) == (403, "token_expired")


def test_a_tier_below_the_deployments_minimum_is_refused(make_master: Callable[..., Master], chain: Chain) -> None:
    master = make_master(auth={"min_tier": 2})
    owner, token = chain.stake(0.5)
    response = master.client.post("/api/v1/auth", json=master.proof(owner, token.token_id))
    assert (response.status_code, response.json()["error"]) == (403, "tier_too_low")
    rich, good = chain.stake(2)
    assert master.client.post("/api/v1/auth", json=master.proof(rich, good.token_id)).status_code == 200


def test_a_tampered_session_is_refused(master: Master, chain: Chain) -> None:
    owner, token = chain.stake(1)
    session = master.login(owner, token.token_id)
    header, payload, signature = session.split(".")
    claims = base64.urlsafe_b64decode(payload + "==").replace(b'"tier":1', b'"tier":4')
    forged = ".".join([header, base64.urlsafe_b64encode(claims).rstrip(b"=").decode(), signature])
    for bad in (forged, session[:-4] + ("AAAA" if not session.endswith("AAAA") else "BBBB"), "not-a-jwt", ""):
        response = master.get("/api/v1/security-context", bad)
        assert response.status_code == 401, bad
        assert response.json()["error"] in ("session_invalid", "no_session")
    assert master.get("/api/v1/security-context").json()["error"] == "no_session"


def test_an_expired_session_is_refused(make_master: Callable[..., Master], chain: Chain) -> None:
    master = make_master(auth={"session_ttl": 5})
    owner, token = chain.stake(1)
    session = master.login(owner, token.token_id)
    exp = master.get("/api/v1/security-context", session).json()["expires_at"]
    assert exp <= time.time() + 5
    time.sleep(max(0.0, exp - time.time()) + 1)
    response = master.get("/api/v1/security-context", session)
    assert (response.status_code, response.json()["error"]) == (401, "session_invalid")
    assert "expired" in response.json()["message"]
    # A session of another master instance (another enclave key) is no session here either.
    other = make_master()
    response = other.get("/api/v1/security-context", session)
    assert (response.status_code, response.json()["error"]) == (401, "session_invalid")


def test_only_tls_1_3_is_offered(master: Master) -> None:
    host, port = master.url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(master.cert))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError), socket.create_connection((host, int(port))) as raw, \
            context.wrap_socket(raw, server_hostname=host):
        pass
    context = ssl.create_default_context(cafile=str(master.cert))
    with socket.create_connection((host, int(port))) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
        assert tls.version() == "TLSv1.3"


def test_stake_status_reads_the_callers_token(master: Master, chain: Chain) -> None:
    owner, token = chain.stake(5)
    session = master.login(owner, token.token_id)
    status = master.get("/api/v1/staking/status", session)
    assert status.status_code == 200, status.text
    assert status.json()["token"]["id"] == token.token_id
    assert status.json()["token"]["stake_mist"] == 5 * SUI
    assert status.json()["pool"]["pool_id"] == chain.deployment.pool_id


def test_the_proof_command_signs_a_login_that_curl_can_send(master: Master, chain: Chain, tmp_path: Path) -> None:
    owner, token = chain.stake(1)
    key_file = tmp_path / "owner.key"
    key_file.write_text(owner.keystring)
    key_file.chmod(0o600)
    result = subprocess.run([sys.executable, "-m", "k3sdaas.nautilus", "proof", "--url", master.url, "--cacert",
                             str(master.cert), "--key-file", str(key_file), "--token-id", token.token_id],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert owner.keystring not in result.stdout + result.stderr
    response = master.client.post("/api/v1/auth", content=result.stdout, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    refused = subprocess.run([sys.executable, "-m", "k3sdaas.nautilus", "proof", "--url", "https://127.0.0.1:1",
                              "--key-file", str(key_file), "--token-id", token.token_id],
                             capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
