"""The worker API (the seed's, on 8080, TLS): ``GET /health``, ``GET /api/v1/metrics``, Prometheus ``/metrics``.

Read-only by design: staking and unstaking move money and stay Ansible modules (sui_stake, seal_token);
registering by hand is ``k3sdaas-agent register``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .worker import Heartbeater, node_metrics


def create_app(heartbeater: Heartbeater) -> Starlette:
    registry = CollectorRegistry()
    gauges = {name: Gauge(f"k3sdaas_agent_{name}", f"worker {name.replace('_', ' ')}", registry=registry)
              for name in ("cpu_usage", "memory_usage", "pod_count", "container_count", "network_rx", "network_tx")}
    beats = Gauge("k3sdaas_agent_heartbeats", "heartbeats accepted by the master", registry=registry)
    token_left = Gauge("k3sdaas_agent_token_seconds_left", "seconds until the seal token expires", registry=registry)
    status = heartbeater.status

    async def health(request: Request) -> Response:
        healthy = status.state in ("starting", "heartbeating")
        return JSONResponse({"status": "ok" if healthy else "degraded", "state": status.state,
                             "detail": status.detail, "node_id": heartbeater.config.node_id,
                             "last_heartbeat": status.last_heartbeat, "heartbeats": status.heartbeats,
                             "reauthentications": status.reauthentications,
                             "token_seconds_left": status.token_seconds_left}, status_code=200 if healthy else 503)

    async def metrics(request: Request) -> Response:
        return JSONResponse(await asyncio.to_thread(node_metrics))

    async def prometheus(request: Request) -> Response:
        values = await asyncio.to_thread(node_metrics)
        for name, gauge in gauges.items():
            gauge.set(values[name])
        beats.set(status.heartbeats)
        if status.token_seconds_left is not None:
            token_left.set(status.token_seconds_left)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": "not_found", "message": f"{request.method} {request.url.path}"}, 404)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        thread = threading.Thread(target=heartbeater.run, name="heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            heartbeater.stop.set()
            await asyncio.to_thread(thread.join, 15)

    return Starlette(routes=[Route("/health", health), Route("/api/v1/metrics", metrics),
                             Route("/metrics", prometheus)], lifespan=lifespan,
                     exception_handlers={404: not_found, 405: not_found})
