"""The master's settings: a YAML file (the seed's ``nautilus-config.yaml`` sections) overlaid by environment.

Every value is bounded here, so a bad file or variable stops the service at start with one line naming
the setting, never later in a request. Durations are seconds.

```yaml
server:   {listen_address: 0.0.0.0, listen_port: 6443, public_url: https://master.example:6443,
           max_body_bytes: 65536, front: nginx, nginx: nginx}  # front: nginx (the Kubernetes API proxy) or none
sui:      {rpc_url: https://fullnode.testnet.sui.io:443, ca_file: null, key_file: null,
           package_id: 0x…, pool_id: null, timeout: 5, poll_interval: 1}
tee:      {attestation_interval: 3600, nsm_socket: null}
k3s:      {kubeconfig: /var/lib/rancher/k3s/kubeconfig.yaml, supervisor_url: https://10.0.0.5:6444,
           ca_file: /var/lib/rancher/k3s/server/tls/server-ca.crt, join_token_ttl: 600}
rbac:     {manifest: /etc/k3sdaas/rbac.yaml, developer_label: k3sdaas.io/developer=true, interval: 10}
auth:     {session_ttl: 900, challenge_ttl: 60, max_clock_skew: 30, min_tier: 1, rate_limit: 100}
nodes:    {heartbeat_grace: 30}
state:    {dir: /var/lib/k3sdaas/nautilus, kms_key_id: null, kms_region: us-east-1, kms_endpoint_url: null}
logging:  {level: info}
```
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from ..chain.keys import normalize_address
from ..errors import InvalidInput
from .rbac import LABEL as RBAC_LABEL
from .rbac import load_manifest

MAX_CONFIG_BYTES = 256 * 1024
LOG_LEVELS = ("debug", "info", "warning", "error")
FRONTS = ("nginx", "none")


@dataclass(frozen=True)
class NautilusConfig:
    listen_address: str = "0.0.0.0"
    listen_port: int = 6443
    public_url: str = ""  # the challenge audience; default https://<listen_address>:<listen_port>
    max_body_bytes: int = 64 * 1024
    front: str = "nginx"  # nginx carries the Kubernetes API proxy (front.py); none: granian alone, no proxy
    nginx: str = "nginx"  # the nginx binary: a path, or a name looked up on PATH and in /usr/sbin
    rpc_url: str = "https://fullnode.testnet.sui.io:443"
    sui_ca_file: str | None = None
    sui_key_file: str | None = None  # the master reads only; without a key it uses a throw-away one
    package_id: str = ""
    pool_id: str | None = None
    sui_timeout: float = 5.0
    poll_interval: float = 1.0
    attestation_interval: float = 3600.0
    nsm_socket: str | None = None
    kubeconfig: str = "/var/lib/rancher/k3s/kubeconfig.yaml"
    supervisor_url: str = "https://127.0.0.1:6444"
    cluster_ca_file: str = "/var/lib/rancher/k3s/server/tls/server-ca.crt"
    join_token_ttl: float = 600.0
    rbac_manifest: str = ""  # the tier RBAC the master keeps (rbac.py); none: the master keeps no RBAC
    rbac_developer_label: str = "k3sdaas.io/developer=true"
    rbac_interval: float = 10.0
    session_ttl: float = 900.0
    challenge_ttl: float = 60.0
    max_clock_skew: float = 30.0
    min_tier: int = 1
    rate_limit: int = 100  # requests per identity per minute through the Kubernetes API proxy
    heartbeat_grace: float = 30.0
    state_dir: str = "/var/lib/k3sdaas/nautilus"
    kms_key_id: str | None = None
    kms_region: str = "us-east-1"
    kms_endpoint_url: str | None = None
    log_level: str = "info"

    @property
    def audience(self) -> str:
        return self.public_url or f"https://{self.listen_address}:{self.listen_port}"


# YAML (section, key) and environment variable for each setting.
SOURCES: dict[str, tuple[tuple[str, str], str]] = {
    "listen_address": (("server", "listen_address"), "K3SDAAS_NAUTILUS_LISTEN_ADDRESS"),
    "listen_port": (("server", "listen_port"), "K3SDAAS_NAUTILUS_LISTEN_PORT"),
    "public_url": (("server", "public_url"), "K3SDAAS_NAUTILUS_PUBLIC_URL"),
    "max_body_bytes": (("server", "max_body_bytes"), "K3SDAAS_NAUTILUS_MAX_BODY_BYTES"),
    "front": (("server", "front"), "K3SDAAS_NAUTILUS_FRONT"),
    "nginx": (("server", "nginx"), "K3SDAAS_NAUTILUS_NGINX"),
    "rpc_url": (("sui", "rpc_url"), "SUI_RPC_URL"),
    "sui_ca_file": (("sui", "ca_file"), "SUI_CA_FILE"),
    "sui_key_file": (("sui", "key_file"), "SUI_KEY_FILE"),
    "package_id": (("sui", "package_id"), "K3SDAAS_PACKAGE_ID"),
    "pool_id": (("sui", "pool_id"), "K3SDAAS_POOL_ID"),
    "sui_timeout": (("sui", "timeout"), "K3SDAAS_NAUTILUS_SUI_TIMEOUT"),
    "poll_interval": (("sui", "poll_interval"), "K3SDAAS_NAUTILUS_POLL_INTERVAL"),
    "attestation_interval": (("tee", "attestation_interval"), "K3SDAAS_NAUTILUS_ATTESTATION_INTERVAL"),
    "nsm_socket": (("tee", "nsm_socket"), "K3SDAAS_NSM_SOCKET"),
    "kubeconfig": (("k3s", "kubeconfig"), "KUBECONFIG"),
    "supervisor_url": (("k3s", "supervisor_url"), "K3SDAAS_NAUTILUS_SUPERVISOR_URL"),
    "cluster_ca_file": (("k3s", "ca_file"), "K3SDAAS_NAUTILUS_CLUSTER_CA_FILE"),
    "join_token_ttl": (("k3s", "join_token_ttl"), "K3SDAAS_NAUTILUS_JOIN_TOKEN_TTL"),
    "rbac_manifest": (("rbac", "manifest"), "K3SDAAS_NAUTILUS_RBAC_MANIFEST"),
    "rbac_developer_label": (("rbac", "developer_label"), "K3SDAAS_NAUTILUS_RBAC_DEVELOPER_LABEL"),
    "rbac_interval": (("rbac", "interval"), "K3SDAAS_NAUTILUS_RBAC_INTERVAL"),
    "session_ttl": (("auth", "session_ttl"), "K3SDAAS_NAUTILUS_SESSION_TTL"),
    "challenge_ttl": (("auth", "challenge_ttl"), "K3SDAAS_NAUTILUS_CHALLENGE_TTL"),
    "max_clock_skew": (("auth", "max_clock_skew"), "K3SDAAS_NAUTILUS_MAX_CLOCK_SKEW"),
    "min_tier": (("auth", "min_tier"), "K3SDAAS_NAUTILUS_MIN_TIER"),
    "rate_limit": (("auth", "rate_limit"), "K3SDAAS_NAUTILUS_RATE_LIMIT"),
    "heartbeat_grace": (("nodes", "heartbeat_grace"), "K3SDAAS_NAUTILUS_HEARTBEAT_GRACE"),
    "state_dir": (("state", "dir"), "K3SDAAS_NAUTILUS_STATE_DIR"),
    "kms_key_id": (("state", "kms_key_id"), "K3SDAAS_NAUTILUS_KMS_KEY_ID"),
    "kms_region": (("state", "kms_region"), "AWS_REGION"),
    "kms_endpoint_url": (("state", "kms_endpoint_url"), "K3SDAAS_NAUTILUS_KMS_ENDPOINT_URL"),
    "log_level": (("logging", "level"), "K3SDAAS_NAUTILUS_LOG_LEVEL"),
}
# name -> (lowest, highest) for the numbers.
BOUNDS: dict[str, tuple[float, float]] = {
    "listen_port": (0, 65535),
    "max_body_bytes": (1024, 1 << 20),
    "sui_timeout": (0.1, 120),
    "poll_interval": (0.05, 60),
    "attestation_interval": (60, 3600),  # the issue asks for a fresh document at least hourly
    "join_token_ttl": (60, 86400),
    "rbac_interval": (1, 3600),
    "session_ttl": (5, 86400),
    "challenge_ttl": (5, 600),
    "max_clock_skew": (0, 300),
    "min_tier": (1, 4),
    "rate_limit": (1, 1_000_000),
    "heartbeat_grace": (5, 3600),
}


def _coerce(name: str, value: Any, default: Any) -> Any:
    if value is None or value == "":
        return default
    if isinstance(default, (int, float)):
        try:
            if isinstance(value, bool):
                raise TypeError
            number = type(default)(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"setting {name} must be a number, got {value!r}", field=name) from None
        low, high = BOUNDS[name]
        if not low <= number <= high:  # NaN fails too
            raise InvalidInput(f"setting {name} must be between {low:g} and {high:g}, got {value!r}", field=name)
        return number
    if isinstance(value, (dict, list, bool)):
        raise InvalidInput(f"setting {name} must be text, got {value!r}", field=name)
    text = str(value)
    if len(text) > 4096:
        raise InvalidInput(f"setting {name} is longer than 4096 characters", field=name)
    return text


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    config_path = Path(path)
    try:
        if config_path.stat().st_size > MAX_CONFIG_BYTES:
            raise InvalidInput(f"config file {str(config_path)!r} is larger than {MAX_CONFIG_BYTES} bytes",
                               field="config")
        data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"config file {str(config_path)!r} does not exist", field="config") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"config file {str(config_path)!r} cannot be read: {exc.__class__.__name__}",
                           field="config") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) or v is None for v in data.values()):
        raise InvalidInput(f"config file {str(config_path)!r} must be a mapping of sections", field="config")
    known = {section for (section, _), _ in SOURCES.values()}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidInput(f"config file has unknown section(s) {', '.join(map(str, unknown))}", field="config")
    return data


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
                base: Mapping[str, Any] | None = None, **overrides: Any) -> NautilusConfig:
    """Defaults, then ``base`` (``serve --local``), the YAML file, the environment, then ``overrides``
    (command-line options)."""
    env = os.environ if env is None else env
    base = base or {}
    data = load_yaml(path) if path else {}
    defaults = NautilusConfig()
    values: dict[str, Any] = {}
    for item in fields(NautilusConfig):
        (section, key), variable = SOURCES[item.name]
        raw = (data.get(section) or {}).get(key, base.get(item.name))
        if variable in env and env[variable] != "":
            raw = env[variable]
        if overrides.get(item.name) is not None:
            raw = overrides[item.name]
        values[item.name] = _coerce(item.name, raw, getattr(defaults, item.name))
    listen = env.get("K3SDAAS_LISTEN")  # what enclave/entrypoint.py sets: HOST:PORT
    if listen and overrides.get("listen_address") is None:
        host, _, port = listen.rpartition(":")
        values["listen_address"] = host or values["listen_address"]
        values["listen_port"] = _coerce("listen_port", port, 0)
    config = replace(defaults, **values)
    return validate(config)


def validate(config: NautilusConfig) -> NautilusConfig:
    if not config.package_id:
        raise InvalidInput("setting package_id (sui.package_id, K3SDAAS_PACKAGE_ID) is required", field="package_id")
    package_id = normalize_address(config.package_id, "package_id")
    pool_id = normalize_address(config.pool_id, "pool_id") if config.pool_id else None
    if config.front not in FRONTS:
        raise InvalidInput(f"setting front must be one of {', '.join(FRONTS)}", field="front")
    if config.log_level.lower() not in LOG_LEVELS:
        raise InvalidInput(f"setting log_level must be one of {', '.join(LOG_LEVELS)}", field="log_level")
    if not config.audience.startswith("https://"):
        raise InvalidInput("setting public_url must be an https:// URL", field="public_url")
    if not RBAC_LABEL.match(config.rbac_developer_label):
        raise InvalidInput(f"setting rbac_developer_label must be key=value, got {config.rbac_developer_label[:80]!r}",
                           field="rbac_developer_label")
    if config.rbac_manifest:
        load_manifest(config.rbac_manifest)  # refuses a manifest the master could not apply, naming it
    return replace(config, package_id=package_id, pool_id=pool_id, log_level=config.log_level.lower(),
                   public_url=config.audience.rstrip("/"))
