"""Running the app: granian (Rust HTTP/TLS, one worker process), TLS 1.3 only.

With ``server.front: nginx`` (the default) nginx (``front.py``) listens on the master's port with TLS 1.3
and granian serves plain HTTP on a Unix socket in ``<state_dir>/front`` behind it; with ``none`` granian
terminates TLS itself and the Kubernetes API proxy is off.

Granian was measured against uvicorn here on a trivial TLS endpoint with wrk, 100 connections:
≈17,800 req/s (P99 13 ms) against ≈5,000 (P99 79 ms). One worker, because the enclave key, the
session cache and the token states live in the worker's memory. The parent process makes the TLS
files and hands the worker its settings through one environment variable.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import logging.config
import os
import sys
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

from .config import NautilusConfig
from .identity import TlsFiles

RUNTIME_ENV = "K3SDAAS_NAUTILUS_RUNTIME"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def log_config(level: str) -> dict[str, Any]:
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {"version": 1, "disable_existing_loggers": False,
            "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}}, "handlers": {"stderr": handler},
            "loggers": {name: {"handlers": ["stderr"], "level": level.upper(), "propagate": False}
                        for name in ("k3sdaas", "_granian", "granian.access")}}


def app_from_env() -> ASGIApp:
    """Granian's factory in the worker process."""
    from .app import create_app
    from .service import Master

    runtime = json.loads(os.environ[RUNTIME_ENV])
    config = NautilusConfig(**runtime["config"])
    tls = TlsFiles(Path(runtime["cert"]), Path(runtime["key"]), bytes.fromhex(runtime["spki_sha256"]))
    logging.config.dictConfig(log_config(config.log_level))
    master = Master(config, tls)
    app = create_app(master)
    if config.front != "nginx":
        return app
    from .front import with_decision
    from .proxy import Decision
    from .ratelimit import RateLimiter

    audit = next(m.kwargs["audit"] for m in app.user_middleware if "audit" in m.kwargs)  # the app's AuditLog
    return with_decision(app, audit, config, Decision(master, RateLimiter(config.rate_limit, 60.0)))


def serve(config: NautilusConfig, tls: TlsFiles) -> None:
    from granian.constants import Interfaces, SSLProtocols
    from granian.log import LogLevels
    from granian.server import Server

    from .front import Front

    os.environ[RUNTIME_ENV] = json.dumps({"config": dataclasses.asdict(config), "cert": str(tls.cert),
                                          "key": str(tls.key), "spki_sha256": tls.spki_sha256.hex()})
    common: dict[str, Any] = {"interface": Interfaces.ASGI, "factory": True, "workers": 1,
                              "log_dictconfig": log_config(config.log_level), "log_level": LogLevels(config.log_level),
                              "respawn_failed_workers": True, "workers_kill_timeout": 10}
    if config.front != "nginx":
        Server(f"{__name__}:app_from_env", address=config.listen_address, port=config.listen_port,
               websockets=True, ssl_cert=tls.cert, ssl_key=tls.key, ssl_protocol_min=SSLProtocols.tls13,
               **common).serve()
        sys.stdout.flush()
        return
    front = Front(config, tls)
    front.start()
    try:
        front.socket.unlink(missing_ok=True)
        Server(f"{__name__}:app_from_env", uds=front.socket, uds_permissions=0o600, websockets=False,
               **common).serve()
    finally:
        front.stop()
        sys.stdout.flush()

