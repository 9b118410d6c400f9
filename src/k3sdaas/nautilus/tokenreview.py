"""Webhook token authentication: the API server asks the master about each bearer session (``TokenReview``).

This is how EKS maps outside identities to Kubernetes users (aws-iam-authenticator): kube-apiserver
is started with ``--authentication-token-webhook-config-file`` naming a kubeconfig whose cluster is
this endpoint, POSTs ``TokenReview`` objects (``authentication.k8s.io/v1`` with
``--authentication-token-webhook-version=v1``; ``v1beta1``, the flag's default, is answered too) and
caches each answer, accepted or refused, for ``--authentication-token-webhook-cache-ttl``.
The master answers from the same session verifier and revocation state as its own API, so a slashed
or unstaked token is refused here as soon as the chain follower learns it; the cache TTL bounds how
long the API server may still accept it (``CACHE_TTL`` + the follower's poll interval ≤ 5 s).

A refusal is HTTP 200 with ``status.authenticated: false`` and ``status.error`` (what kube-apiserver
expects: a non-200 answer is a webhook failure, retried and not cached); a body that is no TokenReview
is a 400 JSON error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..chain.abi import tier_name
from ..errors import K3sdaasError
from ..seal import kubernetes_groups
from .errors import bad_request

PATH = "/webhook/tokenreview"
API_VERSIONS = ("authentication.k8s.io/v1", "authentication.k8s.io/v1beta1")
CACHE_TTL = 4  # seconds; with the follower's 1 s poll, a revocation reaches the API server within 5 s
MAX_AUDIENCES = 16
EXTRA_TOKEN_ID = "k3sdaas.io/token-id"
EXTRA_TIER = "k3sdaas.io/tier"


def review(master: Any, body: dict[str, Any]) -> dict[str, Any]:
    """The TokenReview answer for a request body (already a JSON object)."""
    api_version = body.get("apiVersion")
    if body.get("kind") != "TokenReview" or api_version not in API_VERSIONS:
        raise bad_request(f"body must be a TokenReview of apiVersion {' or '.join(API_VERSIONS)}", "kind")
    spec = body.get("spec")
    token = spec.get("token") if isinstance(spec, dict) else None
    if not isinstance(token, str):
        raise bad_request("spec.token must be a string", "spec.token")
    audiences = spec.get("audiences") if isinstance(spec, dict) else None
    if audiences is not None and (not isinstance(audiences, list) or len(audiences) > MAX_AUDIENCES or
                                  not all(isinstance(a, str) for a in audiences)):
        raise bad_request(f"spec.audiences must be a list of at most {MAX_AUDIENCES} strings", "spec.audiences")
    answer: dict[str, Any] = {"apiVersion": api_version, "kind": "TokenReview", "metadata": {"creationTimestamp": None},
                              "spec": {"token": ""}}
    try:
        session, tier = master.authenticate(f"Bearer {token}")
        groups = kubernetes_groups(tier)
    except K3sdaasError as exc:
        answer["status"] = {"authenticated": False, "user": {}, "error": str(exc)}
        return answer
    # No status.audiences: the API server then checks its wanted audiences against its own implicit ones,
    # as for any webhook that does not scope tokens (k8s.io/apiserver token/webhook).
    answer["status"] = {"authenticated": True, "user": {
        "username": f"sui:{session.address}", "uid": session.token_id, "groups": groups,
        "extra": {EXTRA_TOKEN_ID: [session.token_id], EXTRA_TIER: [tier_name(tier)]}}}
    return answer


def route(master: Any, body_limit: int) -> Route:
    from .app import json_body  # the app's bounded JSON reader (imported late: app imports this module's users)

    async def endpoint(request: Request) -> Response:
        return JSONResponse(review(master, await json_body(request, body_limit)))

    return Route(PATH, endpoint, methods=["POST"])


def install(app: Any, master: Any) -> None:
    app.router.routes.insert(0, route(master, master.config.max_body_bytes))  # before the proxy's catch-alls


def webhook_kubeconfig(server_url: str, ca_file: str | Path, *, token: str | None = None) -> str:
    """The file for ``--authentication-token-webhook-config-file``: the master's endpoint as the cluster.

    ``server_url`` is the master's base URL as the API server reaches it (loopback in the enclave);
    ``ca_file`` the master's TLS certificate. kube-apiserver sends the user's credentials below, if any.
    """
    user: dict[str, Any] = {"token": token} if token else {}
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "k3sdaas-nautilus", "cluster": {"server": server_url.rstrip("/") + PATH,
                                                              "certificate-authority": str(ca_file)}}],
        "users": [{"name": "kube-apiserver", "user": user}],
        "contexts": [{"name": "webhook", "context": {"cluster": "k3sdaas-nautilus", "user": "kube-apiserver"}}],
        "current-context": "webhook",
    }, sort_keys=False)


def apiserver_args(config_file: str | Path, cache_ttl: int = CACHE_TTL) -> list[str]:
    """kube-apiserver flags (for K3s: each as ``--kube-apiserver-arg=<flag without -->``)."""
    if not 0 < cache_ttl <= 5:
        raise ValueError("the webhook cache TTL must be 1-5 s to keep the 5 s revocation promise")
    return [f"--authentication-token-webhook-config-file={config_file}",
            f"--authentication-token-webhook-cache-ttl={cache_ttl}s",
            "--authentication-token-webhook-version=v1"]
