"""nitro-cli's JSON outputs (json_output.rs structs) with their exact key order, both ways."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

STATE_RUNNING = "RUNNING"
FLAGS_NONE = "NONE"
FLAGS_DEBUG = "DEBUG_MODE"


def render_json(value: Any) -> str:
    """serde_json::to_string_pretty + println!: 2-space indent, struct key order, trailing newline."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class EnclaveRunInfo:
    enclave_name: str
    enclave_id: str
    process_id: int
    enclave_cid: int
    number_of_cpus: int
    cpu_ids: list[int]
    memory_mib: int

    def to_json(self) -> dict[str, Any]:
        return {
            "EnclaveName": self.enclave_name,
            "EnclaveID": self.enclave_id,
            "ProcessID": self.process_id,
            "EnclaveCID": self.enclave_cid,
            "NumberOfCPUs": self.number_of_cpus,
            "CPUIDs": list(self.cpu_ids),
            "MemoryMiB": self.memory_mib,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EnclaveRunInfo:
        return cls(
            data.get("EnclaveName", ""),
            data["EnclaveID"],
            data["ProcessID"],
            data["EnclaveCID"],
            data["NumberOfCPUs"],
            list(data["CPUIDs"]),
            data["MemoryMiB"],
        )


@dataclass(frozen=True)
class EnclaveDescribeInfo:
    enclave_name: str | None
    enclave_id: str
    process_id: int
    enclave_cid: int
    number_of_cpus: int
    cpu_ids: list[int]
    memory_mib: int
    state: str = STATE_RUNNING
    flags: str = FLAGS_NONE
    measurements: dict[str, str] | None = None
    image_name: str | None = None
    image_version: str | None = None
    metadata: dict[str, Any] | None = None

    @property
    def debug_mode(self) -> bool:
        return self.flags == FLAGS_DEBUG

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.enclave_name is None else {"EnclaveName": self.enclave_name}
        out.update(
            {
                "EnclaveID": self.enclave_id,
                "ProcessID": self.process_id,
                "EnclaveCID": self.enclave_cid,
                "NumberOfCPUs": self.number_of_cpus,
                "CPUIDs": list(self.cpu_ids),
                "MemoryMiB": self.memory_mib,
                "State": self.state,
                "Flags": self.flags,
            }
        )
        optional = {
            "Measurements": self.measurements,
            "ImageName": self.image_name,
            "ImageVersion": self.image_version,
            "Metadata": self.metadata,
        }
        out.update({key: value for key, value in optional.items() if value is not None})
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EnclaveDescribeInfo:
        return cls(
            data.get("EnclaveName"),
            data["EnclaveID"],
            data["ProcessID"],
            data["EnclaveCID"],
            data["NumberOfCPUs"],
            list(data["CPUIDs"]),
            data["MemoryMiB"],
            data["State"],
            data["Flags"],
            data.get("Measurements"),
            data.get("ImageName"),
            data.get("ImageVersion"),
            data.get("Metadata"),
        )


@dataclass(frozen=True)
class EnclaveTerminateInfo:
    enclave_name: str | None
    enclave_id: str
    terminated: bool

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.enclave_name is None else {"EnclaveName": self.enclave_name}
        out.update({"EnclaveID": self.enclave_id, "Terminated": self.terminated})
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EnclaveTerminateInfo:
        return cls(data.get("EnclaveName"), data["EnclaveID"], bool(data["Terminated"]))
