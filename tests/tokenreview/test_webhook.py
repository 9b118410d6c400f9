"""TokenReview: the master's answers, the stand-in's webhook authenticator (cache semantics), and real kubectl
straight to the stand-in with a seal session, refused within 5 s once the token is slashed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kube.conftest import KUBECTLS, Kube
from nautilus.conftest import Chain, Master

from k3sdaas.nautilus.tokenreview import PATH, apiserver_args
from k3sdaas_localnet.kube.webhook import WebhookConfigError, WebhookTokenAuthenticator, parse_duration


def review(master: Master, token: str, version: str = "v1") -> dict:
    body = {"apiVersion": f"authentication.k8s.io/{version}", "kind": "TokenReview", "spec": {"token": token}}
    response = master.client.post(PATH, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["apiVersion"], answer["kind"]) == (body["apiVersion"], "TokenReview")
    return dict(answer["status"])


def until(check, timeout: float) -> float:
    """Seconds until ``check()`` is true (AssertionError after ``timeout``)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "not within the time allowed"
        time.sleep(0.1)
    return time.monotonic() - started


def test_a_good_session_is_authenticated_as_its_sui_address_and_tier(chain: Chain, master: Master) -> None:
    owner, token = chain.stake(2.0)
    session = master.login(owner, token.token_id)
    for version in ("v1", "v1beta1"):
        assert review(master, session, version) == {"authenticated": True, "user": {
            "username": f"sui:{owner.address}", "uid": token.token_id, "groups": ["k3sdaas:developer"],
            "extra": {"k3sdaas.io/token-id": [token.token_id], "k3sdaas.io/tier": ["developer"]}}}


def test_tampered_and_foreign_tokens_are_refused_with_the_reason(chain: Chain, master: Master) -> None:
    owner, token = chain.stake(0.5)
    session = master.login(owner, token.token_id)
    header, claims, signature = session.split(".")
    tampered = ".".join((header, claims, ("A" if signature[0] != "A" else "B") + signature[1:]))
    for bad in (tampered, "not-a-session", ""):
        status = review(master, bad)
        assert status["authenticated"] is False and status["user"] == {}
        assert "malformed or not signed by this master" in status["error"], status


def test_a_slashed_token_is_refused_once_the_chain_says_so(chain: Chain, master: Master) -> None:
    owner, token = chain.stake(2.0)
    session = master.login(owner, token.token_id)
    assert review(master, session)["authenticated"] is True
    chain.slash(token.token_id, 9000)  # 0.2 SUI left: below the viewer tier
    until(lambda: review(master, session)["authenticated"] is False, 5)
    assert "slashed below tier 1" in review(master, session)["error"]


@pytest.mark.slow
def test_an_expired_session_is_refused(chain: Chain, start) -> None:
    short = start(auth={"session_ttl": 5})
    owner, token = chain.stake(0.5)
    session = short.login(owner, token.token_id)
    assert review(short, session)["authenticated"] is True
    until(lambda: review(short, session)["authenticated"] is False, 8)
    assert review(short, session)["error"] == "session expired; log in again"


@pytest.mark.parametrize("body", [
    b"not json", b"[]", json.dumps({"kind": "TokenReview", "apiVersion": "v1", "spec": {"token": "x"}}).encode(),
    json.dumps({"kind": "Pod", "apiVersion": "authentication.k8s.io/v1", "spec": {"token": "x"}}).encode(),
    json.dumps({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "spec": {"token": 7}}).encode(),
    json.dumps({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                "spec": {"token": "x", "audiences": "k3s"}}).encode(),
    b"{" * 5000,
])
def test_a_body_that_is_no_token_review_is_a_400_json_error(master: Master, body: bytes) -> None:
    response = master.client.post(PATH, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


def test_the_stand_in_caches_answers_for_the_ttl_and_never_caches_errors(chain: Chain, master: Master,
                                                                        webhook_config: Path, tmp_path: Path) -> None:
    owner, token = chain.stake(5.0)
    session = master.login(owner, token.token_id)
    webhook = WebhookTokenAuthenticator.from_kubeconfig(webhook_config, cache_ttl=1.0)
    user = webhook.authenticate(session)
    assert user is not None and user.name == f"sui:{owner.address}"
    assert user.groups == ("k3sdaas:admin", "system:authenticated") and user.uid == token.token_id
    assert webhook.authenticate(session) == user and webhook.calls == 1, "a success is cached"
    assert webhook.authenticate("forged") is None and webhook.authenticate("forged") is None
    assert webhook.calls == 2, "a refusal is cached too"
    time.sleep(1.1)
    assert webhook.authenticate(session) == user and webhook.calls == 3, "the TTL bounds the cache"

    config = yaml.safe_load(webhook_config.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1/webhook/tokenreview"
    unreachable = tmp_path / "down.kubeconfig"
    unreachable.write_text(yaml.safe_dump(config))
    down = WebhookTokenAuthenticator.from_kubeconfig(unreachable, cache_ttl=60)
    down.backoff = (0.01, 1.5, 3)
    assert down.authenticate(session) is None and down.calls == 3, "retried with backoff"
    assert down.authenticate(session) is None and down.calls == 6, "an error is not cached"


def test_webhook_settings_are_checked(tmp_path: Path) -> None:
    assert [parse_duration(d) for d in ("5s", "2m0s", "500ms", "1h")] == [5, 120, 0.5, 3600]
    for bad in ("5", "", "5 s", "-1s"):
        with pytest.raises(WebhookConfigError):
            parse_duration(bad)
    missing = tmp_path / "nope"
    with pytest.raises(WebhookConfigError, match="cannot be read"):
        WebhookTokenAuthenticator.from_kubeconfig(missing)
    (tmp_path / "bad").write_text(yaml.safe_dump({"current-context": "x", "contexts": []}))
    with pytest.raises(WebhookConfigError, match="no context named 'x'"):
        WebhookTokenAuthenticator.from_kubeconfig(tmp_path / "bad")
    done = subprocess.run([sys.executable, "-m", "k3sdaas_localnet", "kube", "--state", str(tmp_path / "s"),
                           "--port", "0", "--authentication-token-webhook-config-file", str(missing)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "cannot be read" in done.stderr
    assert apiserver_args("/etc/k3sdaas/webhook.kubeconfig") == [
        "--authentication-token-webhook-config-file=/etc/k3sdaas/webhook.kubeconfig",
        "--authentication-token-webhook-cache-ttl=4s", "--authentication-token-webhook-version=v1"]
    with pytest.raises(ValueError):
        apiserver_args("/x", cache_ttl=30)


def user_kubeconfig(kube: Kube, session: str, path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "seal",
        "clusters": [{"name": "standin", "cluster": {"server": kube.url, "certificate-authority": str(kube.state /
                                                                                                       "ca.pem")}}],
        "users": [{"name": "seal", "user": {"token": session}}],
        "contexts": [{"name": "seal", "context": {"cluster": "standin", "user": "seal"}}]}))
    return path


def webhook_reviews(master: Master) -> int:
    time.sleep(0.5)  # the audit writer flushes every 0.2 s
    log = master.state / "audit.log"
    return sum(1 for line in log.read_text().splitlines() if json.loads(line)["path"] == PATH)


@pytest.mark.parametrize("version", sorted({min(KUBECTLS), max(KUBECTLS)}) if KUBECTLS else [],
                         ids=lambda v: f"kubectl-{v[0]}.{v[1]}")
def test_kubectl_straight_to_the_api_with_a_session_then_refused_within_5s_of_a_slash(
        chain: Chain, master: Master, kube: Kube, version: tuple[int, int], tmp_path: Path) -> None:
    owner, token = chain.stake(2.0)
    config = user_kubeconfig(kube, master.login(owner, token.token_id), tmp_path / "user.kubeconfig")

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([KUBECTLS[version], "--kubeconfig", str(config), "--cache-dir", str(tmp_path / "cache"),
                               *args], capture_output=True, text=True, timeout=60, check=False)

    reviews = webhook_reviews(master)
    if version >= (1, 28):
        whoami = kubectl("auth", "whoami", "-o", "json")
        assert whoami.returncode == 0, whoami.stderr
        info = json.loads(whoami.stdout)["status"]["userInfo"]
        assert info["username"] == f"sui:{owner.address}" and info["uid"] == token.token_id
        assert info["groups"] == ["k3sdaas:developer", "system:authenticated"]
    for _ in range(3):
        done = kubectl("get", "--raw", "/version")
        assert done.returncode == 0 and json.loads(done.stdout)["major"] == "1", done.stderr
    assert webhook_reviews(master) == reviews + 1, "the API server asked once and answered the rest from its cache"

    chain.slash(token.token_id, 9000)
    slashed = time.monotonic()
    while (done := kubectl("get", "--raw", "/version")).returncode == 0:
        assert time.monotonic() - slashed < 5, "still accepted 5 s after the slash"
        time.sleep(0.2)
    assert time.monotonic() - slashed < 5
    assert "Unauthorized" in done.stderr or "must be logged in" in done.stderr, done.stderr


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                         max_size=4), max_leaves=12)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=json_values, version=st.sampled_from(["authentication.k8s.io/v1", "authentication.k8s.io/v1beta1", 3]))
def test_fuzzed_reviews_never_answer_5xx(master: Master, spec: object, version: object) -> None:
    response = master.client.post(PATH, json={"apiVersion": version, "kind": "TokenReview", "spec": spec})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert response.json()["status"]["authenticated"] is False
