"""The Kubernetes API behind the master: an impersonating reverse proxy (pure ASGI).

Each request is authenticated by its session (``Authorization: Bearer`` from ``k3sdaas-kubectl-auth``),
counted against the identity's rate limit and checked against its tier's verbs (a second line behind
RBAC: a viewer only reads). Then every client-supplied ``Authorization``, ``Impersonate-*`` and
front-proxy ``X-Remote-*`` header is dropped, and the request goes to the API server with the master's
own credential (its kubeconfig) plus ``Impersonate-User: sui:<address>`` and ``Impersonate-Group:
k3sdaas:<tier>``. Responses stream through chunk by chunk (watch, logs). WebSocket upgrades (``exec``,
``attach``) are relayed frame by frame after the upstream's 101. Every refusal is a Kubernetes ``Status``.

kubectl reaches the proxy under ``/k8s`` (a server URL with a path, as Rancher does) because the master's
own ``GET /api/v1/nodes`` would shadow Kubernetes' node list at the root; ``/api``, ``/apis``, ``/version``
and ``/openapi`` are proxied at the root too for other clients.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp
import yarl
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from ..chain.abi import tier_name
from ..seal import kubernetes_groups
from .errors import ApiError
from .ratelimit import RateLimiter
from .service import Master
from .sessions import SessionInvalid

log = logging.getLogger("k3sdaas.nautilus.proxy")
PREFIX = "/k8s"
MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's own request body limit
COALESCE_BYTES = 256 * 1024  # answers up to this size are sent whole; larger ones and watches stream
# Hop-by-hop headers (RFC 9110 §7.6.1) never cross a proxy; Host is the upstream's.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "transfer-encoding", "upgrade", "host"})
# Identity headers only the proxy may set (Impersonate-* and X-Remote-* are prefixes, so Uid and Extra-* go too).
IDENTITY_PREFIXES = ("impersonate-", "x-remote-")
READ_VERBS = frozenset({"get", "list", "watch"})
WRITE_VERBS = READ_VERBS | {"create", "update", "patch", "delete", "deletecollection", "proxy"}
TIER_VERBS = {1: READ_VERBS, 2: WRITE_VERBS, 3: WRITE_VERBS, 4: WRITE_VERBS}
# Asking "who am I / may I" is allowed to every tier (kubectl auth whoami, auth can-i).
SELF_REVIEWS = frozenset({("authorization.k8s.io", "selfsubjectaccessreviews"),
                          ("authorization.k8s.io", "selfsubjectrulesreviews"),
                          ("authentication.k8s.io", "selfsubjectreviews")})
# Streams into a container write to it whatever the HTTP method (apiserver ≥1.30 also asks `create`).
CONTAINER_STREAMS = frozenset({"exec", "attach", "portforward"})
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 413: "RequestEntityTooLarge",
           429: "TooManyRequests", 500: "InternalError", 502: "InternalError", 503: "ServiceUnavailable",
           504: "Timeout"}


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

    def response(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        details = {"retryAfterSeconds": self.retry_after} if self.retry_after else {}
        headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
        if self.retry_after:
            headers.append((b"retry-after", str(self.retry_after).encode()))
        return self.code, headers, json.dumps(status(self.code, str(self), **details)).encode()


class Upstream:
    """The API server as the master's kubeconfig names it: base URL, TLS context (CA, client certificate) and
    the master's Authorization header; loaded on first use so the master starts while the cluster does not."""

    def __init__(self, kubeconfig: str) -> None:
        self.kubeconfig = kubeconfig
        self.base = ""
        self.tls: ssl.SSLContext | None = None
        self.authorization: str | None = None
        self.session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()

    async def ready(self) -> aiohttp.ClientSession:
        if self.session is None:
            async with self._lock:
                if self.session is None:
                    await asyncio.to_thread(self._load)
                    # HTTP/1.1 keep-alive pool; a watch holds a connection, hence the generous bound. aiohttp,
                    # not httpx: httpx's pool measured ~10x slower here under concurrent requests.
                    self.session = aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(ssl=self.tls or True, limit=1000, keepalive_timeout=30),
                        auto_decompress=False, skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding",
                                                                  "Content-Type"), trust_env=False)
        assert self.session is not None
        return self.session

    def _load(self) -> None:
        from kubernetes import client, config  # the library is large: imported on first use

        configuration = client.Configuration()
        try:
            config.load_kube_config(config_file=self.kubeconfig, client_configuration=configuration,
                                    persist_config=False)
            tls = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
            if not configuration.verify_ssl:
                tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
            if configuration.cert_file:
                tls.load_cert_chain(configuration.cert_file, configuration.key_file)
        except Exception as exc:  # noqa: BLE001  (config, file, YAML and SSL errors of many types)
            raise Refusal(502, f"the master's kubeconfig {self.kubeconfig!r} cannot be used: "
                               f"{exc.__class__.__name__}") from None
        self.base, self.tls = configuration.host.rstrip("/"), tls
        self.authorization = configuration.get_api_key_with_prefix("BearerToken")  # "Bearer …", or a client cert

    def url(self, raw_path: bytes, query: bytes) -> str:
        return self.base + (raw_path + (b"?" + query if query else b"")).decode("latin-1")


class KubeProxy:
    def __init__(self, master: Master, upstream: Upstream, limiter: RateLimiter) -> None:
        self.master = master
        self.upstream = upstream
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    # ----- the decision, the same for HTTP and WebSocket ------------------------------------------

    def _admit(self, scope: Scope, path: str) -> tuple[list[tuple[bytes, bytes]], Target]:
        """The headers to send upstream (the client's, cleaned, plus the identity) and the request's target."""
        headers = [(k.lower(), v) for k, v in scope["headers"]]
        authorization = next((v for k, v in headers if k == b"authorization"), b"").decode("latin-1")
        try:
            session, tier = self.master.authenticate(authorization)
        except (ApiError, SessionInvalid) as exc:
            raise Refusal(401, str(exc)) from None
        user = f"sui:{session.address}"
        wait = self.limiter.hit(session.address)
        if wait:
            raise Refusal(429, f"rate limit of {self.limiter.limit} requests per {self.limiter.window:g} s "
                               f"exceeded for {user}; retry in {wait} s", wait)
        target = target_of(scope.get("method", "GET"), path, scope.get("query_string", b"").decode("latin-1"))
        if not allowed(tier, target):
            raise Refusal(403, forbidden_message(user, tier, target))
        named_hop = {t.strip().lower().encode() for k, v in headers if k == b"connection"
                     for t in v.decode("latin-1").split(",")}
        kept = [(k, v) for k, v in headers if k.decode("latin-1") not in HOP_BY_HOP and k not in named_hop
                and k != b"authorization" and not k.decode("latin-1").startswith(IDENTITY_PREFIXES)]
        identity = [(b"impersonate-user", user.encode())] + \
            [(b"impersonate-group", group.encode()) for group in kubernetes_groups(tier)]
        if self.upstream.authorization:
            identity.append((b"authorization", self.upstream.authorization.encode("latin-1")))
        return kept + identity, target

    @staticmethod
    def _paths(scope: Scope) -> tuple[str, bytes]:
        """The path as the API server should see it: decoded (to decide on) and raw (to forward)."""
        path = scope["path"]
        raw = scope.get("raw_path") or urllib.parse.quote(path).encode()
        raw = raw.split(b"?", 1)[0]
        if path == PREFIX or path.startswith(PREFIX + "/"):  # only the PREFIX routes see such paths
            path, raw = path[len(PREFIX):] or "/", raw[len(PREFIX):] or b"/"
        return path, raw

    # ----- HTTP -------------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._forward(scope, receive, send)
        except Refusal as refusal:
            code, headers, body = refusal.response()
            await send({"type": "http.response.start", "status": code, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, raw_path = self._paths(scope)
        session = await self.upstream.ready()  # first: the identity headers include the master's credential
        headers, target = self._admit(scope, path)
        body = await _read_body(receive)
        streaming = target.verb == "watch" or b"follow=true" in scope.get("query_string", b"")
        timeout = aiohttp.ClientTimeout(total=None, connect=5.0, sock_read=None if streaming else 60.0)
        url = yarl.URL(self.upstream.url(raw_path, scope.get("query_string", b"")), encoded=True)  # as sent
        try:
            response = await session.request(
                scope["method"], url, data=body or None, allow_redirects=False, timeout=timeout,
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers])
        except TimeoutError:
            raise Refusal(504, "the Kubernetes API did not answer in time") from None
        except aiohttp.ClientError as exc:
            raise Refusal(502, f"the Kubernetes API is unreachable: {exc.__class__.__name__}") from None
        try:
            start = {"type": "http.response.start", "status": response.status,
                     "headers": [(k.lower(), v) for k, v in response.raw_headers
                                 if k.lower() not in (b"connection", b"keep-alive", b"transfer-encoding")]}
            chunks = response.content.iter_any()
            head, ended = bytearray(), False
            if not streaming:
                # A small answer goes out in one write: headers and body written apart wait for the client's
                # delayed ACK (Nagle), ~40 ms a request.
                try:
                    async for chunk in chunks:
                        head += chunk
                        if len(head) >= COALESCE_BYTES:
                            break
                    else:
                        ended = True
                except TimeoutError:
                    raise Refusal(504, "the Kubernetes API did not answer in time") from None
                except aiohttp.ClientError as exc:
                    raise Refusal(502, f"the Kubernetes API broke off its answer: {exc.__class__.__name__}") from None
            await send(start)
            if ended:
                await send({"type": "http.response.body", "body": bytes(head)})
                return
            if head:
                await send({"type": "http.response.body", "body": bytes(head), "more_body": True})
            try:
                async for chunk in chunks:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except (TimeoutError, aiohttp.ClientError) as exc:  # headers are gone: all that is left is to end the body
                log.info("upstream stream of %s ended: %s", path, exc.__class__.__name__)
            await send({"type": "http.response.body", "body": b""})
        finally:
            response.release()

    # ----- WebSocket (exec, attach) -------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            upstream = await self._open_upstream(scope)
        except Refusal as refusal:
            await _deny(scope, send, *refusal.response())
            return
        except InvalidStatus as exc:
            response = exc.response
            await _deny(scope, send, response.status_code,
                        [(k.lower().encode(), v.encode()) for k, v in response.headers.raw_items()
                         if k.lower() in ("content-type", "retry-after")], bytes(response.body or b""))
            return
        async with upstream:
            message = await receive()
            if message["type"] != "websocket.connect":
                return
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
            await _relay(upstream, receive, send)

    async def _open_upstream(self, scope: Scope) -> ClientConnection:
        path, raw_path = self._paths(scope)
        await self.upstream.ready()
        headers, _ = self._admit(scope, path)
        offered = [Subprotocol(p.strip()) for k, v in headers if k == b"sec-websocket-protocol"
                   for p in v.decode("latin-1").split(",") if p.strip()]
        skip = {b"sec-websocket-protocol", b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions"}
        url = self.upstream.url(raw_path, scope.get("query_string", b"")).replace("https://", "wss://", 1)
        try:
            return await connect(url, ssl=self.upstream.tls, subprotocols=offered or None, compression=None,
                                 additional_headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers
                                                     if k not in skip and k != b"user-agent"],
                                 user_agent_header=next((v.decode("latin-1") for k, v in headers
                                                         if k == b"user-agent"), None),
                                 max_size=None, ping_interval=None, open_timeout=10, proxy=None)
        except InvalidStatus:
            raise
        except (InvalidHandshake, OSError, TimeoutError) as exc:
            raise Refusal(502, f"the Kubernetes API refused the upgrade: {exc.__class__.__name__}") from None


async def _read_body(receive: Receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refusal(400, "the client went away before sending the whole body")
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            raise Refusal(413, f"request body is larger than {MAX_BODY_BYTES} bytes")
        if not message.get("more_body"):
            return bytes(body)


async def _deny(scope: Scope, send: Send, code: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    """Refuse an upgrade with an HTTP answer (ASGI's denial-response extension) so kubectl prints the Status."""
    log.info("upgrade of %s refused with %d: %s", scope["path"], code, body[:300].decode("utf-8", "replace"))
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": code, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})


async def _relay(upstream: ClientConnection, receive: Receive, send: Send) -> None:
    """Frames both ways until either side closes; the other side then learns the close code."""

    async def downstream() -> None:
        try:
            async for frame in upstream:
                await send({"type": "websocket.send", **({"bytes": frame} if isinstance(frame, bytes)
                                                         else {"text": frame})})
        except ConnectionClosed:
            pass
        await send({"type": "websocket.close", "code": upstream.close_code or 1000,
                    "reason": upstream.close_reason or ""})

    async def upstream_bound() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                await upstream.close(message.get("code", 1000))
                return
            data = message.get("bytes")
            await upstream.send(data if data is not None else message.get("text", ""))

    tasks = [asyncio.create_task(downstream()), asyncio.create_task(upstream_bound())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def proxy_routes(master: Master, rate_limit: int = 100) -> list[BaseRoute]:
    """The routes to add to the master's app: the proxy at its prefix and at the API server's root paths."""
    proxy = KubeProxy(master, Upstream(master.config.kubeconfig), RateLimiter(rate_limit, 60.0))
    routes: list[BaseRoute] = [Route("/version", proxy)]
    for root in (PREFIX, "/api", "/apis", "/openapi"):  # "/api" itself and everything under it
        routes += [Mount(root, app=proxy), Route(root, proxy)]
    return routes
