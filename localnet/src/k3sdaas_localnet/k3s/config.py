"""The agent's settings from flags, /etc/rancher/k3s/config.yaml and K3S_* variables, as K3s merges them.

K3s turns each config-file key into the flag of the same name (repeatable flags take lists) placed
before the command-line flags, so a flag given on the command line wins over the file, and the file
over the environment.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = "/etc/rancher/k3s/config.yaml"
DEFAULT_DATA_DIR = "/var/lib/rancher/k3s"
MAX_FILE_BYTES = 1 << 20
# Flags the stand-in understands; other keys of a real config (kubelet-arg, ...) are accepted and ignored.
LIST_KEYS = ("node-label", "node-taint")
SCALAR_KEYS = ("server", "token", "token-file", "node-name", "node-ip", "data-dir")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


@dataclass
class AgentConfig:
    server: str
    token: str
    node_name: str
    data_dir: Path
    with_node_id: bool = False
    node_ip: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)


def read_bounded(path: Path, what: str) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"{what} {path}: {error.strerror}") from error
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{what} {path}: larger than {MAX_FILE_BYTES} bytes")
    return data.decode("utf-8", errors="replace")


def load_file(path: Path, required: bool) -> dict[str, Any]:
    if not path.exists() and not required:
        return {}
    try:
        loaded = yaml.safe_load(read_bounded(path, "config file"))
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path}: not valid YAML: {error}") from error
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path}: must be a mapping of flag names to values")
    return loaded


def parse_labels(values: list[str]) -> dict[str, str]:
    labels = {}
    for value in values:
        key, sep, label = value.partition("=")
        if not key or not sep:
            raise ConfigError(f"node-label {value!r}: expected key=value")
        labels[key] = label
    return labels


def parse_taints(values: list[str]) -> list[dict[str, str]]:
    """``key=value:Effect`` or ``key:Effect``, as kubelet's --register-with-taints takes them."""
    taints = []
    for value in values:
        spec, _, effect = value.rpartition(":")
        key, sep, taint_value = spec.partition("=")
        if not key or effect not in TAINT_EFFECTS:
            raise ConfigError(f"node-taint {value!r}: expected key[=value]:{'|'.join(TAINT_EFFECTS)}")
        taints.append({"key": key, "value": taint_value, "effect": effect} if sep else {"key": key, "effect": effect})
    return taints


def as_list(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise ConfigError(f"{key}: expected a string or a list of strings")


def resolve(args: argparse.Namespace, env: dict[str, str], hostname: str) -> AgentConfig:
    config_path = Path(args.config or env.get("K3S_CONFIG_FILE") or DEFAULT_CONFIG)
    file = load_file(config_path, required=bool(args.config or env.get("K3S_CONFIG_FILE")))
    env_names = {"server": "K3S_URL", "token": "K3S_TOKEN", "token-file": "K3S_TOKEN_FILE",
                 "node-name": "K3S_NODE_NAME", "data-dir": "K3S_DATA_DIR"}

    def scalar(key: str) -> str:
        flag = getattr(args, key.replace("-", "_"))
        value = flag if flag is not None else file.get(key, env.get(env_names.get(key, ""), ""))
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {type(value).__name__}")
        return value

    lists = {key: as_list(key, file.get(key, [])) + (getattr(args, key.replace("-", "_")) or []) for key in LIST_KEYS}
    server = scalar("server")
    if not server.startswith("https://"):
        raise ConfigError(f"server: expected an https:// URL of the K3s server, got {server!r}"
                          if server else "server is not set (flag --server, config key server or K3S_URL)")
    token = scalar("token")
    if not token and scalar("token-file"):
        token = read_bounded(Path(scalar("token-file")), "token-file").strip()
    if not token:
        raise ConfigError("token is not set (flag --token, config key token, token-file or K3S_TOKEN)")
    with_node_id = args.with_node_id or file.get("with-node-id", False)
    if not isinstance(with_node_id, bool):
        raise ConfigError("with-node-id: expected true or false")
    return AgentConfig(
        server=server.rstrip("/"),
        token=token,
        node_name=(scalar("node-name") or hostname).lower(),
        data_dir=Path(scalar("data-dir") or DEFAULT_DATA_DIR),
        with_node_id=with_node_id,
        node_ip=scalar("node-ip"),
        labels=parse_labels(lists["node-label"]),
        taints=parse_taints(lists["node-taint"]),
    )
