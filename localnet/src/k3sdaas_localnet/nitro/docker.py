"""The few Docker CLI calls the simulator needs: inspect, build, export a filesystem, import, run."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from k3sdaas.errors import Unavailable

DOCKER = "docker"


class DockerFailed(Unavailable):
    """A docker command exited non-zero; the message carries its stderr."""


def docker(*args: str, stdin: bytes | None = None, timeout: float = 600.0) -> bytes:
    try:
        proc = subprocess.run([DOCKER, *args], input=stdin, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise DockerFailed("docker CLI is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise DockerFailed(f"docker {args[0]} timed out") from exc
    if proc.returncode != 0:
        raise DockerFailed(f"docker {args[0]} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def image_inspect(reference: str) -> dict[str, Any] | None:
    try:
        return json.loads(docker("image", "inspect", reference))[0]
    except DockerFailed as exc:
        if "No such image" in str(exc) or "No such object" in str(exc):
            return None
        raise


def build(reference: str, context: Path) -> None:
    docker("build", "-t", reference, str(context), timeout=3600)


def export_rootfs(image_id: str, tar_path: Path) -> None:
    """The flattened filesystem of an image, via a created (never started) container."""
    container = docker("create", image_id, "/k3sdaas-never-started").decode().strip()
    try:
        docker("export", "-o", str(tar_path), container, timeout=3600)
    finally:
        docker("rm", "-f", container)


def import_rootfs(tar: bytes, reference: str, command: Sequence[str], env: Sequence[str]) -> None:
    changes: list[str] = []
    if command:
        changes += ["--change", f"CMD {json.dumps(list(command))}"]
    for item in env:
        key, _, value = item.partition("=")
        changes += ["--change", f"ENV {key}={json.dumps(value)}"]
    docker("import", *changes, "-", reference, stdin=tar, timeout=3600)


def image_command(config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What the enclave's init runs: ENTRYPOINT + CMD, and the image environment."""
    section = config.get("Config") or {}
    return [*(section.get("Entrypoint") or []), *(section.get("Cmd") or [])], list(section.get("Env") or [])
