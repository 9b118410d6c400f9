"""The simulator's shared state: one JSON record per running enclave, the test CA, logs, sockets.

Separate nitro-cli invocations and the enclave processes they spawn all see the same directory
(``K3SDAAS_NITRO_SIM_STATE``, default ``$XDG_STATE_HOME/k3sdaas/nitro-sim``); mutations hold a lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from k3sdaas.errors import InvalidInput

STATE_ENV = "K3SDAAS_NITRO_SIM_STATE"
INSTANCE_ENV = "K3SDAAS_NITRO_SIM_INSTANCE_ID"
ROLE_ENV = "K3SDAAS_NITRO_SIM_IAM_ROLE"
ALLOCATOR_ENV = "K3SDAAS_NITRO_SIM_ALLOCATOR"
RUNTIME_ENV = "K3SDAAS_NITRO_SIM_RUNTIME"  # "docker" (default) or "none": NSM only, no container
BOARD_ASSET_TAG = Path("/sys/devices/virtual/dmi/id/board_asset_tag")
NO_INSTANCE_ID = "i-0000000000000000"
ALLOCATOR_PATH = Path("/etc/nitro_enclaves/allocator.yaml")
# Without an allocator.yaml the simulator reserves what a K3s control plane needs.
DEFAULT_ALLOCATOR = {"memory_mib": 8192, "cpu_count": 2}


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(STATE_ENV):
        return Path(env[STATE_ENV])
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "k3sdaas" / "nitro-sim"


def instance_id(env: Mapping[str, str] | None = None) -> str:
    """Like nitro-cli: the DMI board asset tag (the EC2 instance ID), else the all-zero ID."""
    env = os.environ if env is None else env
    if env.get(INSTANCE_ENV):
        return env[INSTANCE_ENV]
    try:
        tag = "".join(BOARD_ASSET_TAG.read_text().split())
    except OSError:
        return NO_INSTANCE_ID
    return tag if re.fullmatch(r"i-[0-9a-f]+", tag) else NO_INSTANCE_ID


def parse_cpu_pool(text: str) -> list[int]:
    """allocator.yaml's cpu_pool syntax, e.g. "2,3,6-9"."""
    cpus: list[int] = []
    for part in str(text).split(","):
        low, _, high = part.strip().partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise InvalidInput(f"cpu_pool entry {part!r} is not N or N-M", field="cpu_pool")
        cpus.extend(range(int(low), int(high or low) + 1))
    return sorted(set(cpus))


def pool_for_count(count: int) -> list[int]:
    """Whole cores as the allocator reserves them on an SMT host, core 0 left to the parent.

    Core k has threads k and k + cores; two vCPUs on a 4-vCPU host give [1, 3] as on EC2.
    """
    if count % 2:
        return list(range(1, count + 1))
    cores = count // 2 + 1
    return sorted(cpu for core in range(1, cores) for cpu in (core, core + cores))


@dataclass(frozen=True)
class Allocator:
    memory_mib: int
    cpu_pool: list[int]

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None) -> Allocator:
        env = os.environ if env is None else env
        path = Path(env[ALLOCATOR_ENV]) if env.get(ALLOCATOR_ENV) else ALLOCATOR_PATH
        config: dict[str, Any] = dict(DEFAULT_ALLOCATOR)
        if path.exists():
            loaded = yaml.safe_load(path.read_text()) or {}
            if not isinstance(loaded, dict):
                raise InvalidInput(f"{path} is not a YAML mapping", field="allocator")
            config = loaded
        if "cpu_pool" in config and "cpu_count" in config:
            raise InvalidInput(f"{path}: cpu_count and cpu_pool conflict", field="cpu_pool")
        pool = parse_cpu_pool(config["cpu_pool"]) if "cpu_pool" in config else pool_for_count(int(config["cpu_count"]))
        return cls(int(config["memory_mib"]), pool)


@dataclass
class EnclaveRecord:
    slot_uid: int
    enclave_id: str
    name: str
    cid: int
    cpu_ids: list[int]
    memory_mib: int
    debug_mode: bool
    eif_path: str
    measurements: dict[str, str]
    metadata: dict[str, Any] | None
    pid: int = 0
    status: str = "starting"  # starting -> running, or failed (with error)
    error: str = ""
    container: str = ""

    @property
    def slot(self) -> str:
        return f"{self.slot_uid:x}"


class SimState:
    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("enclaves", "run", "logs", "pki"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with (self.root / "lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def record_path(self, slot: str) -> Path:
        return self.root / "enclaves" / f"{slot}.json"

    def run_dir(self, slot: str) -> Path:
        """Mounted into the container: the NSM socket and the vsock stand-in sockets live here."""
        return self.root / "run" / slot

    def vsock_link(self, cid: int) -> Path:
        """<state>/vsock/<CID> points at the enclave's vsock directory, so the parent can address it by CID."""
        return self.root / "vsock" / str(cid)

    def console_log(self, slot: str) -> Path:
        return self.root / "run" / f"{slot}.console"

    def save(self, record: EnclaveRecord) -> None:
        path = self.record_path(record.slot)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(record)))
        temporary.replace(path)

    def load(self, slot: str) -> EnclaveRecord | None:
        try:
            return EnclaveRecord(**json.loads(self.record_path(slot).read_text()))
        except FileNotFoundError:
            return None

    def remove(self, slot: str) -> None:
        self.record_path(slot).unlink(missing_ok=True)

    def records(self) -> list[EnclaveRecord]:
        """Records in start order (slot uids begin with the start time in milliseconds)."""
        found = [self.load(path.stem) for path in self.root.joinpath("enclaves").glob("*.json")]
        return sorted((record for record in found if record is not None), key=lambda record: record.slot_uid)
