"""Joining a worker: attest the master, prove the seal token, register, and write the K3s agent's files.

The files are the ones role ``k3s_agent`` writes (same keys, same layout): ``config.yaml`` (server,
node-name, with-node-id, node-label, node-taint; no secret) and the unit's environment file with
``K3S_TOKEN``. A node that is registered, whose files say what they should and whose agent runs is
left alone: no new join token is asked for (``plan`` decides that without writing anything).
"""

from __future__ import annotations

import difflib
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml  # type: ignore[import-untyped]

from ..chain import Signer
from ..errors import InvalidInput
from .master import Attested, MasterLink

HEADER = "# Managed by k3sdaas (k3s_join). Read by k3s agent at start; the token is in the env file (K3S_TOKEN).\n"
PENDING_SERVER = "<the supervisor URL register-worker returns>"
TAINT = re.compile(r"[^=:]+(=[^:]*)?:(NoSchedule|PreferNoSchedule|NoExecute)")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?")
MAX_FILE_BYTES = 64 * 1024


def short_token_id(token_id: str) -> str:
    """Label values are at most 63 characters; the token's first 16 hex digits name it, as a short git id does."""
    return token_id.removeprefix("0x")[:16]


@dataclass(frozen=True)
class JoinSpec:
    token_id: str
    node_id: str
    node_ip: str
    config_path: Path
    env_path: Path
    pool: str = "default"
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[str] = field(default_factory=list)
    capacity: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for taint in self.taints:
            if not TAINT.fullmatch(taint):
                raise InvalidInput(f"taint {taint!r} must be key[=value]:NoSchedule|PreferNoSchedule|NoExecute",
                                   field="node_taints")
        for key, value in {**self.labels, "pool": self.pool}.items():
            if not LABEL_VALUE.fullmatch(str(value)):
                raise InvalidInput(f"label {key}={value!r} is not a Kubernetes label value (at most 63 characters)",
                                   field="node_labels")

    def config(self, server: str, tier_name: str) -> dict[str, Any]:
        labels = {"k3sdaas.io/token-id": short_token_id(self.token_id), "k3sdaas.io/tier": tier_name,
                  "k3sdaas.io/pool": self.pool, **self.labels}
        return {"server": server.rstrip("/"), "node-name": self.node_id, "with-node-id": False,
                "node-label": [f"{k}={v}" for k, v in sorted(labels.items())], "node-taint": list(self.taints)}


def render(config: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(config, sort_keys=True, default_flow_style=False, indent=2)


def read_small(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidInput(f"{path} is larger than {MAX_FILE_BYTES} bytes", field="config_dir")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def current_server(text: str | None) -> str | None:
    try:
        data = yaml.safe_load(text or "") or {}
    except yaml.YAMLError:
        return None
    server = data.get("server") if isinstance(data, dict) else None
    return server if isinstance(server, str) and server else None


def has_token(env_text: str | None) -> bool:
    return any(line.startswith("K3S_TOKEN=") and len(line) > len("K3S_TOKEN=")
               for line in (env_text or "").splitlines())


def write_file(path: Path, text: str, mode: int) -> None:
    """Atomically, created with its final mode (the env file holds the join token)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def address_towards(url: str) -> str:
    """The source address this host uses to reach ``url`` (what the master records as the node's IP)."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((host, parts.port or 443))
        return str(probe.getsockname()[0])


@dataclass
class JoinPlan:
    attested: Attested
    session: dict[str, Any]
    token: dict[str, Any]
    registered: bool
    before: str | None
    after: str
    env_ok: bool

    @property
    def files_ok(self) -> bool:
        return self.registered and self.before == self.after and self.env_ok

    def diff(self, path: Path) -> dict[str, str]:
        return {"before": self.before or "", "after": self.after, "before_header": str(path),
                "after_header": str(path)}

    def unified_diff(self, path: Path) -> str:
        return "".join(difflib.unified_diff((self.before or "").splitlines(True), self.after.splitlines(True),
                                            str(path), str(path)))


def plan(link: MasterLink, signer: Signer, spec: JoinSpec) -> JoinPlan:
    """Attest, log in with the seal proof (the master checks the token), and compare: no change anywhere."""
    attested = link.attest()
    session = link.login(signer, spec.token_id)
    bearer = str(session["session"])
    token = link.call("GET", "/api/v1/staking/status", session=bearer)["token"]
    nodes = link.call("GET", "/api/v1/nodes", session=bearer).get("nodes", [])
    registered = any(n.get("node_id") == spec.node_id and n.get("token_id") == spec.token_id for n in nodes)
    before = read_small(spec.config_path)
    server = current_server(before) or PENDING_SERVER
    return JoinPlan(attested, session, token, registered, before, render(spec.config(server, token["tier_name"])),
                    has_token(read_small(spec.env_path)))


def register(link: MasterLink, signer: Signer, spec: JoinSpec, planned: JoinPlan) -> dict[str, Any]:
    """Register the node (a new short-lived join token) and write config.yaml and the env file."""
    material = link.register(signer, spec.token_id, spec.node_id, spec.node_ip, spec.capacity)
    planned.after = render(spec.config(str(material["supervisor_url"]), planned.token["tier_name"]))
    write_file(spec.config_path, planned.after, 0o644)
    write_file(spec.env_path, f"K3S_TOKEN={material['join_token']}\n", 0o600)
    return material
