"""Drive the real nitro-cli (or anything argv-compatible, like the simulator) and parse its JSON."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k3sdaas.errors import InvalidInput, Unavailable
from k3sdaas.nitro.errors import NitroCliError, parse_error_output
from k3sdaas.nitro.records import EnclaveDescribeInfo, EnclaveRunInfo, EnclaveTerminateInfo


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


class NitroCli:
    """One method per nitro-cli command; failures raise the typed NitroCliError of the root cause."""

    def __init__(
        self, command: Sequence[str] = ("nitro-cli",), *, env: Mapping[str, str] | None = None, timeout: float = 900.0
    ) -> None:
        self.command = list(command)
        self.env = dict(os.environ if env is None else env)
        self.timeout = timeout

    def run(self, *args: str) -> CliResult:
        try:
            proc = subprocess.run(
                [*self.command, *args], capture_output=True, text=True, env=self.env, timeout=self.timeout, check=False
            )
        except FileNotFoundError as exc:
            raise Unavailable(f"nitro-cli not found: {self.command[0]}") from exc
        except subprocess.TimeoutExpired as exc:
            raise Unavailable(f"nitro-cli {args[0] if args else ''} timed out after {self.timeout}s") from exc
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    def _json(self, *args: str) -> Any:
        result = self.run(*args)
        if result.exit_code != 0:
            raise parse_error_output(result.stderr, result.exit_code, result.stdout)
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError as exc:
            raise NitroCliError(
                0,
                f"nitro-cli {args[0]} printed no JSON: {exc}",
                exit_code=0,
                stdout=result.stdout,
                stderr=result.stderr,
            ) from exc

    def build_enclave(
        self,
        docker_uri: str,
        output_file: str | Path,
        *,
        docker_dir: str | Path | None = None,
        name: str | None = None,
        version: str | None = None,
        metadata: str | Path | None = None,
        signing_certificate: str | Path | None = None,
        private_key: str | None = None,
    ) -> dict[str, str]:
        """Returns the Measurements map (HashAlgorithm, PCR0, PCR1, PCR2[, PCR8]).

        A signed build (``signing_certificate`` with ``private_key``, a PEM path or a KMS key ARN) adds PCR8.
        """
        if (signing_certificate is None) != (private_key is None):
            raise InvalidInput("signing needs both signing_certificate and private_key", field="signing_certificate")
        args = ["build-enclave", "--docker-uri", docker_uri, "--output-file", str(output_file)]
        for flag, value in (
            ("--signing-certificate", signing_certificate),
            ("--private-key", private_key),
            ("--docker-dir", docker_dir),
            ("--name", name),
            ("--version", version),
            ("--metadata", metadata),
        ):
            if value is not None:
                args += [flag, str(value)]
        return dict(self._json(*args)["Measurements"])

    def run_enclave(
        self,
        eif_path: str | Path,
        memory_mib: int,
        *,
        cpu_count: int | None = None,
        cpu_ids: Sequence[int] | None = None,
        enclave_cid: int | None = None,
        enclave_name: str | None = None,
        debug_mode: bool = False,
    ) -> EnclaveRunInfo:
        if (cpu_count is None) == (cpu_ids is None):
            raise InvalidInput("give exactly one of cpu_count and cpu_ids", field="cpu_count")
        args = ["run-enclave", "--eif-path", str(eif_path), "--memory", str(memory_mib)]
        args += ["--cpu-count", str(cpu_count)] if cpu_count is not None else ["--cpu-ids", *map(str, cpu_ids or [])]
        if enclave_cid is not None:
            args += ["--enclave-cid", str(enclave_cid)]
        if enclave_name is not None:
            args += ["--enclave-name", enclave_name]
        if debug_mode:
            args.append("--debug-mode")
        return EnclaveRunInfo.from_json(self._json(*args))

    def describe_enclaves(self, *, metadata: bool = False) -> list[EnclaveDescribeInfo]:
        """Reachable enclaves; if some are unreachable nitro-cli exits 39 and this raises (partial list in .stdout)."""
        data = self._json("describe-enclaves", *(["--metadata"] if metadata else []))
        return [EnclaveDescribeInfo.from_json(item) for item in data]

    def terminate_enclave(
        self, *, enclave_id: str | None = None, enclave_name: str | None = None
    ) -> EnclaveTerminateInfo:
        if (enclave_id is None) == (enclave_name is None):
            raise InvalidInput("give exactly one of enclave_id and enclave_name", field="enclave_id")
        args = ["--enclave-id", enclave_id] if enclave_id is not None else ["--enclave-name", str(enclave_name)]
        return EnclaveTerminateInfo.from_json(self._json("terminate-enclave", *args))

    def terminate_all(self) -> list[EnclaveTerminateInfo]:
        data = self._json("terminate-enclave", "--all")
        items = data if isinstance(data, list) else [data]
        return [EnclaveTerminateInfo.from_json(item) for item in items]

    def describe_eif(self, eif_path: str | Path) -> dict[str, Any]:
        return dict(self._json("describe-eif", "--eif-path", str(eif_path)))
