"""The Kubernetes API behind the master: the decision nginx asks for each request (``auth_request``).

nginx (``front.py``) carries the bytes between kubectl and the API server; before each request it asks
``GET /_authz`` here with the client's ``Authorization`` and the request's method and path. The decision
authenticates the session, counts the request against the identity's rate limit and checks the tier's
verbs (a second line behind RBAC: a viewer only reads). It answers 200 with the identity nginx then sends
upstream as ``Impersonate-User: sui:<address>`` and ``Impersonate-Group: k3sdaas:<tier>`` (beside the
master's own credential, every client ``Authorization``, ``Impersonate-*`` and ``X-Remote-*`` dropped),
or 401/403 with the Kubernetes ``Status`` nginx returns (a 429 rides on a 403: ``auth_request`` passes only
those two). nginx may cache an admission for a second (``X-Accel-Expires``) per session, method and path.

kubectl reaches the proxy under ``/k8s`` (a server URL with a path, as Rancher does) because the master's
own ``GET /api/v1/nodes`` would shadow Kubernetes' node list at the root; ``/api``, ``/apis``, ``/version``
and ``/openapi`` are proxied at the root too for other clients.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from ..chain.abi import tier_name
from ..errors import K3sdaasError
from ..seal import kubernetes_groups
from .ratelimit import RateLimiter
from .service import Master

PREFIX = "/k8s"
MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's own request body limit (nginx's client_max_body_size)
MAX_MESSAGE_CHARS = 2048  # a refusal names the resource, from the client's path: bounded for the header it rides in
# An admission may be cached (<= 2 s: nginx counts whole seconds) only while the identity has more requests left
# in its window than that cache could pass before the hits, counted from nginx's log, catch up.
CACHE_HEADROOM = 50_000
READ_VERBS = frozenset({"get", "list", "watch"})
WRITE_VERBS = READ_VERBS | {"create", "update", "patch", "delete", "deletecollection", "proxy"}
TIER_VERBS = {1: READ_VERBS, 2: WRITE_VERBS, 3: WRITE_VERBS, 4: WRITE_VERBS}
# Asking "who am I / may I" is allowed to every tier (kubectl auth whoami, auth can-i).
SELF_REVIEWS = frozenset({("authorization.k8s.io", "selfsubjectaccessreviews"),
                          ("authorization.k8s.io", "selfsubjectrulesreviews"),
                          ("authentication.k8s.io", "selfsubjectreviews")})
# Streams into a container write to it whatever the HTTP method (apiserver >=1.30 also asks `create`).
CONTAINER_STREAMS = frozenset({"exec", "attach", "portforward"})
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
           408: "Timeout", 413: "RequestEntityTooLarge", 414: "RequestURITooLong",
           431: "RequestHeaderFieldsTooLarge", 429: "TooManyRequests", 500: "InternalError", 502: "InternalError",
           503: "ServiceUnavailable", 504: "Timeout"}


@dataclass(frozen=True)
class Target:
    """What a request does, resolved from method, path and query as apiserver's RequestInfoFactory does."""

    verb: str
    resource_request: bool = False
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


def target_of(method: str, path: str, query: str) -> Target:
    parts = [p for p in path.split("/") if p]
    method = method.lower()
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return Target(method)
    special = ""
    if rest[0] in ("watch", "proxy") and len(rest) > 1:  # the deprecated /api/v1/watch/… and /proxy/… forms
        special, rest = rest[0], rest[1:]
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    resource, name, subresource = rest[0], rest[1] if len(rest) > 1 else "", "/".join(rest[2:])
    verb = {"post": "create", "put": "update", "patch": "patch"}.get(method, method)
    if method in ("get", "head"):
        watching = any(v.lower() in ("true", "1") for v in urllib.parse.parse_qs(query).get("watch", []))
        verb = "watch" if watching and not name else ("get" if name else "list")
    elif method == "delete":
        verb = "delete" if name else "deletecollection"
    verb = special or verb
    if subresource in CONTAINER_STREAMS:
        verb = "create"
    return Target(verb, True, group, resource, subresource, namespace, name)


def allowed(tier: int, target: Target) -> bool:
    if target.resource_request and target.verb == "create" and not target.subresource and \
            (target.group, target.resource) in SELF_REVIEWS:
        return True
    if not target.resource_request:
        return target.verb == "get" or tier >= 2
    return target.verb in TIER_VERBS.get(tier, frozenset())


def forbidden_message(user: str, tier: int, target: Target) -> str:
    """apiserver's Forbidden text, so kubectl users read what they know, plus the tier's reason."""
    reason = f"the {tier_name(tier)} tier may only get, list and watch"
    if not target.resource_request:
        return f'forbidden: User "{user}" cannot {target.verb} path: {reason}'
    resource = target.resource + (f"/{target.subresource}" if target.subresource else "")
    where = f' in the namespace "{target.namespace}"' if target.namespace else ""
    named = f' "{target.name}"' if target.name else ""
    return (f'{resource}{named} is forbidden: User "{user}" cannot {target.verb} resource "{resource}" in API group '
            f'"{target.group}"{where}: {reason}')


def status(code: int, message: str, **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": REASONS.get(code, "InternalError"), "code": code}
    if details:
        body["details"] = details
    return body


class Refusal(Exception):
    def __init__(self, code: int, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after

    def body(self) -> str:
        """The Status as one line of ASCII (it travels in a header to nginx: no raw control characters)."""
        details = {"retryAfterSeconds": self.retry_after} if self.retry_after else {}
        message = str(self)[:MAX_MESSAGE_CHARS]
        return json.dumps(status(self.code, message, **details), separators=(",", ":"))


class Decision:
    """What nginx asks before each proxied request: who it is, whether the tier and the rate limit allow it."""

    def __init__(self, master: Master, limiter: RateLimiter) -> None:
        self.master = master
        self.limiter = limiter

    def answer(self, authorization: str, method: str, uri: str) -> tuple[int, dict[str, str]]:
        """(200 or 401/403, the answer's headers) for ``method uri`` (the upstream request line's target)."""
        identity, tier = "anonymous" if not authorization else "invalid-session", 0
        try:
            try:
                session, tier = self.master.authenticate(authorization)
            except K3sdaasError as exc:  # ApiError (no session), SessionInvalid (tampered, expired, revoked)
                raise Refusal(401, str(exc)) from None
            identity = f"sui:{session.address}"
            if not uri.startswith("/"):
                raise Refusal(400, "the request path is not one the Kubernetes API serves")
            wait = self.limiter.hit(session.address)
            if wait:
                raise Refusal(429, f"rate limit of {self.limiter.limit} requests per {self.limiter.window:g} s "
                                   f"exceeded for {identity}; retry in {wait} s", wait)
            path, _, query = uri.partition("?")
            path = urllib.parse.unquote(path)
            if any(part in (".", "..") for part in path.split("/")):  # nginx routed on the normalized path
                raise Refusal(400, "the request path has dot segments")
            target = target_of(method, path, query)
            if not allowed(tier, target):
                raise Refusal(403, forbidden_message(identity, tier, target))
        except Refusal as refusal:
            headers = {"x-k3sdaas-user": identity, "x-k3sdaas-tier": str(tier), "x-accel-expires": "0",
                       "x-k3sdaas-code": str(refusal.code), "x-k3sdaas-status": refusal.body()}
            if refusal.retry_after:
                headers["retry-after"] = str(refusal.retry_after)
            return (401 if refusal.code == 401 else 403), headers
        cacheable = self.limiter.remaining(session.address) > CACHE_HEADROOM
        return 200, {"x-k3sdaas-user": identity, "x-k3sdaas-group": kubernetes_groups(tier)[0],
                     "x-k3sdaas-tier": str(tier), "x-accel-expires": "1" if cacheable else "0"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI endpoint nginx's ``auth_request`` reaches (``/_authz`` on the master's Unix socket)."""
        headers = {k.lower(): v.decode("latin-1") for k, v in scope["headers"]}
        code, answer = self.answer(headers.get(b"authorization", ""), headers.get(b"x-original-method", "GET"),
                                   headers.get(b"x-original-uri", ""))
        await send({"type": "http.response.start", "status": code,
                    "headers": [(k.encode(), v.encode("latin-1")) for k, v in answer.items()]})
        await send({"type": "http.response.body", "body": b""})


def proxy_routes(front: str) -> list[BaseRoute]:
    """The proxy's paths in the master's app, which answers them only with a Status: nginx serves them when it
    fronts the master, so behind nginx only a path nginx normalized elsewhere (``/k8s/%2e%2e``) arrives here."""
    if front == "nginx":
        refusal = Refusal(400, "the request path is not one the Kubernetes API serves")
    else:
        refusal = Refusal(503, "the Kubernetes API proxy runs in nginx in front of the master; this master runs "
                               "with server.front: none")
    body = refusal.body().encode()

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": refusal.code,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    routes: list[BaseRoute] = [Route("/version", answer)]
    for root in (PREFIX, "/api", "/apis", "/openapi"):  # "/api" itself and everything under it
        routes += [Mount(root, app=answer), Route(root, answer)]
    return routes
