"""The worker agent's settings: a YAML file with the seed's ``worker-config.yaml`` sections.

```yaml
sui:      {rpc_url: https://fullnode.testnet.sui.io:443, ca_file: null, package_id: 0x…,
           key_file: /etc/k3sdaas/node.key, token_id: 0x…}
k3s:      {master_url: https://10.0.0.5:6443, config_dir: /etc/rancher/k3s,
           env_file: /etc/systemd/system/k3s-agent.service.env}
node:     {node_id: worker-1, listen_address: 10.0.0.7, listen_port: 8080, state_dir: /var/lib/k3sdaas-agent,
           heartbeat_interval: 10, pool: default}
security: {attestation_root: null, expected_pcrs: {pcr0: …, pcr1: …, pcr2: …}, refresh_before: 86400,
           timeout: 10}
```

Every value is bounded here: a bad file stops the agent at start with one line naming the setting.
Without ``expected_pcrs`` the PCRs are read from the deployment's on-chain registry (``sui.package_id``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from ..chain import normalize_address
from ..errors import InvalidInput

MAX_CONFIG_BYTES = 64 * 1024
SECTIONS: dict[str, tuple[str, ...]] = {
    "sui": ("rpc_url", "ca_file", "package_id", "key_file", "token_id"),
    "k3s": ("master_url", "config_dir", "env_file"),
    "node": ("node_id", "listen_address", "listen_port", "state_dir", "heartbeat_interval", "pool"),
    "security": ("attestation_root", "expected_pcrs", "refresh_before", "timeout"),
}
BOUNDS: dict[str, tuple[float, float]] = {
    "listen_port": (0, 65535), "heartbeat_interval": (1, 3600), "refresh_before": (0, 30 * 86400),
    "timeout": (1, 120),
}


@dataclass(frozen=True)
class AgentConfig:
    master_url: str
    token_id: str
    node_id: str
    rpc_url: str = ""
    ca_file: str | None = None
    package_id: str = ""
    key_file: str = "/etc/k3sdaas/node.key"
    config_dir: str = "/etc/rancher/k3s"
    env_file: str = "/etc/systemd/system/k3s-agent.service.env"
    listen_address: str = "127.0.0.1"
    listen_port: int = 8080
    state_dir: str = "/var/lib/k3sdaas-agent"
    heartbeat_interval: float = 10.0
    pool: str = "default"
    attestation_root: str | None = None
    expected_pcrs: dict[str, str] = field(default_factory=dict)
    refresh_before: float = 86400.0  # refresh the token on chain this long before it expires
    timeout: float = 10.0


def _coerce(name: str, value: Any, default: Any) -> Any:
    if name == "expected_pcrs":
        if not isinstance(value, dict) or set(value) != {"pcr0", "pcr1", "pcr2"}:
            raise InvalidInput("setting expected_pcrs must have exactly the keys pcr0, pcr1, pcr2", field=name)
        return {k: str(v) for k, v in value.items()}
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        try:
            if isinstance(value, bool):
                raise TypeError
            number = type(default)(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"setting {name} must be a number, got {value!r}", field=name) from None
        low, high = BOUNDS[name]
        if not low <= number <= high:
            raise InvalidInput(f"setting {name} must be between {low:g} and {high:g}, got {value!r}", field=name)
        return number
    if isinstance(value, (dict, list, bool)) or len(str(value)) > 4096:
        raise InvalidInput(f"setting {name} must be text of at most 4096 characters", field=name)
    return str(value)


def read_yaml(path: str | Path) -> dict[str, Any]:
    config_path = Path(path)
    try:
        if config_path.stat().st_size > MAX_CONFIG_BYTES:
            raise InvalidInput(f"config file {config_path} is larger than {MAX_CONFIG_BYTES} bytes", field="config")
        data = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"config file {config_path} cannot be read: {exc.__class__.__name__}", field="config") \
            from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) or v is None for v in data.values()):
        raise InvalidInput(f"config file {config_path} must be a mapping of sections", field="config")
    unknown = sorted(map(str, set(data) - set(SECTIONS)))
    if unknown:
        raise InvalidInput(f"config file has unknown section(s) {', '.join(unknown)}", field="config")
    return data


def load_config(path: str | Path) -> AgentConfig:
    data = read_yaml(path)
    defaults = {f.name: f.default for f in fields(AgentConfig)}
    values: dict[str, Any] = {}
    for section, names in SECTIONS.items():
        given = data.get(section) or {}
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise InvalidInput(f"config section {section} has unknown key(s) {', '.join(map(str, unknown))}",
                               field=section)
        for name in names:
            if given.get(name) not in (None, ""):
                values[name] = _coerce(name, given[name], defaults.get(name))
    for required in ("master_url", "token_id", "node_id"):
        if required not in values:
            raise InvalidInput(f"setting {required} is required", field=required)
    if not values["master_url"].startswith("https://"):
        raise InvalidInput("setting master_url must be an https:// URL", field="master_url")
    values["token_id"] = normalize_address(values["token_id"], "token_id")
    if "expected_pcrs" not in values and not (values.get("package_id") and values.get("rpc_url")):
        raise InvalidInput("give security.expected_pcrs, or sui.rpc_url and sui.package_id to read them on chain",
                           field="expected_pcrs")
    return AgentConfig(**values)
