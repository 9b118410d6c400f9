"""The master's HTTP API (Starlette, ASGI): routes, bounded JSON bodies, JSON errors, metrics.

Every failure is a JSON body ``{"error": code, "message": …}`` with a 4xx or 503 status; a 500 would
mean a bug, and is JSON too. Bodies are read up to ``max_body_bytes`` and refused beyond (413).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import InvalidInput, K3sdaasError, Unavailable
from . import audit, tokenreview
from .errors import ApiError, bad_request
from .identity import describe
from .kubeconfig import kubeconfig_route
from .openapi import spec
from .proxy import proxy_routes
from .service import Master, Proof, parse_capacity
from .sessions import SessionInvalid

log = logging.getLogger("k3sdaas.nautilus")
NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_METRICS = 32
DRAIN_FACTOR = 16
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("nautilus_http_requests", "HTTP requests by route and status",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("nautilus_http_request_seconds", "Time to the response's first byte, by route",
                                 ["route"], registry=self.registry, buckets=LATENCY_BUCKETS)
        self.logins = Counter("nautilus_logins", "Seal logins and worker registrations by outcome",
                              ["kind", "outcome"], registry=self.registry)
        self.heartbeats = Counter("nautilus_heartbeats", "Worker heartbeats accepted", registry=self.registry)
        self.chain_up = Gauge("nautilus_chain_available", "1 while the chain answers", registry=self.registry)
        self.nodes = Gauge("nautilus_nodes", "Registered nodes by status", ["status"], registry=self.registry)


class CountRequests:
    """Pure ASGI (no per-request task like BaseHTTPMiddleware): counts each response by route and status
    and records its latency in the app (to the response start, not counting the network)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: set[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in self.routes else "other"
        started = time.perf_counter()

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.latency.labels(route).observe(time.perf_counter() - started)
                self.metrics.requests.labels(route, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counted)


def reply(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


async def json_body(request: Request, limit: int, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object, at most ``limit`` bytes; an empty body is ``{}`` when optional.

    A body over the limit is still drained (up to DRAIN_FACTOR times it) so that the client reads the
    413 instead of a reset connection; a body declared larger than that is refused unread.
    """
    too_large = ApiError(413, "body_too_large", f"request body is larger than {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit * DRAIN_FACTOR):
        raise too_large
    data = bytearray()
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit * DRAIN_FACTOR:
            raise too_large
        if size <= limit:
            data += chunk
    if size > limit:
        raise too_large
    if not data.strip() and optional:
        return {}
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        raise bad_request("request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    return body


def text_field(body: dict[str, Any], name: str, limit: int = 256) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise bad_request(f"{name} must be a non-empty string of at most {limit} characters", name)
    return value


def proof_of(body: dict[str, Any]) -> Proof:
    """The seal proof fields, checked in the order the API lists them."""
    token_id, address, nonce = text_field(body, "token_id", 66), text_field(body, "address", 66), \
        text_field(body, "nonce", 128)
    issued_at = body.get("issued_at")
    if isinstance(issued_at, bool) or not isinstance(issued_at, int) or not 0 <= issued_at < 10**16:
        raise bad_request("issued_at must be an integer of milliseconds since the epoch", "issued_at")
    return Proof(token_id, address, nonce, issued_at, text_field(body, "audience", 248),
                 text_field(body, "signature", 512))


def create_app(master: Master) -> Starlette:
    limit = master.config.max_body_bytes
    metrics = Metrics()

    def authenticated(handler: Callable[[Request, Any, int], Awaitable[Response]]) -> Callable[[Request],
                                                                                           Awaitable[Response]]:
        async def wrapper(request: Request) -> Response:
            session, tier = master.authenticate(request.headers.get("authorization"))
            return await handler(request, session, tier)

        return wrapper

    async def challenge(request: Request) -> Response:
        await json_body(request, limit, optional=True)
        return reply(master.challenge())

    async def auth(request: Request) -> Response:
        proof = proof_of(await json_body(request, limit))
        try:
            result = await master.login(proof)
        except ApiError as exc:
            metrics.logins.labels("user", exc.error).inc()
            raise
        metrics.logins.labels("user", "ok").inc()
        return reply(result)

    async def attestation(request: Request) -> Response:
        body = await json_body(request, limit, optional=True)
        nonce = None
        if body.get("nonce") is not None:
            nonce = _nonce_bytes(body["nonce"])
        try:
            document = await master.attestor.document(nonce)
        except Unavailable as exc:
            raise ApiError(503, "attestation_unavailable", str(exc), reason=str(exc)) from None
        return reply({**describe(document), "enclave_public_key": master.public_key.hex(),
                      "tls_spki_sha256": master.tls.spki_sha256.hex()})

    @authenticated
    async def security_context(request: Request, session: Any, tier: int) -> Response:
        return reply(master.context(session, tier))

    async def register_worker(request: Request) -> Response:
        body = await json_body(request, limit)
        proof = proof_of(body)
        node_id = text_field(body, "node_id", 64)
        if not NODE_ID.fullmatch(node_id):
            raise bad_request("node_id must be 1-64 characters of letters, digits, '.', '_' or '-'", "node_id")
        try:
            ip = str(ipaddress.ip_address(text_field(body, "ip", 64)))
        except ValueError:
            raise bad_request("ip must be an IPv4 or IPv6 address", "ip") from None
        try:
            result = await master.register_worker(proof, node_id, ip, parse_capacity(body.get("capacity")))
        except ApiError as exc:
            metrics.logins.labels("worker", exc.error).inc()
            raise
        metrics.logins.labels("worker", "ok").inc()
        return reply(result)

    @authenticated
    async def heartbeat(request: Request, session: Any, tier: int) -> Response:
        body = await json_body(request, limit, optional=True)
        result = master.heartbeat(session, _metrics_of(body.get("metrics")))
        metrics.heartbeats.inc()
        return reply(result)

    @authenticated
    async def nodes(request: Request, session: Any, tier: int) -> Response:
        return reply({"nodes": master.nodes()})

    @authenticated
    async def staking_status(request: Request, session: Any, tier: int) -> Response:
        return reply(await master.staking_status(session))

    async def health(request: Request) -> Response:
        chain_ok, chain_error = master.chain_status()
        return reply({"status": "ok", "chain": {"available": chain_ok, "error": chain_error,
                                                 "address": master.chain.address},
                      "rbac": {"synced": master.rbac.synced, "error": master.rbac.error}})

    async def prometheus(request: Request) -> Response:
        chain_ok, _ = master.chain_status()
        metrics.chain_up.set(1 if chain_ok else 0)
        listed = master.nodes()
        for status in ("Ready", "NotReady"):
            metrics.nodes.labels(status).set(sum(1 for n in listed if n["status"] == status))
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(request: Request) -> Response:
        return reply(spec(master.config.audience))

    routes = [
        Route("/api/v1/challenge", challenge, methods=["POST"]),
        Route("/api/v1/auth", auth, methods=["POST"]),
        Route("/api/v1/attestation", attestation, methods=["POST"]),
        Route("/api/v1/security-context", security_context, methods=["GET"]),
        Route("/api/v1/register-worker", register_worker, methods=["POST"]),
        Route("/api/v1/nodes/heartbeat", heartbeat, methods=["POST"]),
        Route("/api/v1/nodes", nodes, methods=["GET"]),
        Route("/api/v1/staking/status", staking_status, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        # The Kubernetes API proxy (impersonation, rate limit, tier verbs) and the kubeconfig for kubectl.
        kubeconfig_route(master), *proxy_routes(master.config.front),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await master.start()
        log.info("master listening for %s", master.config.audience)
        try:
            yield
        finally:
            await master.stop()
            log.info("master stopped")

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        ApiError: _api_error, SessionInvalid: _session_error, InvalidInput: _invalid_input,
        HTTPException: _http_error, K3sdaasError: _runtime_error, Exception: _internal_error,
    })
    app.add_middleware(CountRequests, metrics=metrics, routes={r.path for r in routes if isinstance(r, Route)})
    tokenreview.install(app, master)  # POST /webhook/tokenreview, kube-apiserver's webhook token authenticator
    audit.install(app, master)  # every request in the hash-chained audit log, batches anchored on chain
    return app


def _nonce_bytes(value: Any) -> bytes:
    """A client nonce, hex or base64, at most 512 bytes (the NSM's limit)."""
    if isinstance(value, str) and len(value) <= 1024:
        try:
            raw = bytes.fromhex(value) if re.fullmatch(r"(?:[0-9a-fA-F]{2})+", value) else \
                base64.b64decode(value, validate=True)
        except (ValueError, binascii.Error):
            raw = b""
        if 0 < len(raw) <= 512:
            return raw
    raise bad_request("nonce must be 1-512 bytes as hex or base64", "nonce")


def _metrics_of(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_METRICS or not all(
            isinstance(k, str) and len(k) <= 64 and not isinstance(v, bool) and isinstance(v, (int, float))
            for k, v in value.items()):
        raise bad_request(f"metrics must be an object of at most {MAX_METRICS} numbers", "metrics")
    return dict(value)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return reply(exc.body(), exc.status)


async def _session_error(request: Request, exc: Exception) -> Response:
    return reply({"error": "session_invalid", "message": str(exc)}, 401)


async def _invalid_input(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidInput)
    return reply(bad_request(str(exc), exc.field).body(), 400)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return reply({"error": code, "message": f"{request.method} {request.url.path}: {exc.detail}"}, exc.status_code)


async def _runtime_error(request: Request, exc: Exception) -> Response:
    status = 503 if isinstance(exc, Unavailable) else 400
    return reply({"error": "unavailable" if status == 503 else "refused", "message": str(exc)}, status)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return reply({"error": "internal", "message": "internal error; the master logged it"}, 500)
