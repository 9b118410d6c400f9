"""Simulator state in a temp dir, small EIFs built without Docker, and golden-file helpers."""

from __future__ import annotations

import io
import os
import re
import signal
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from k3sdaas_localnet.nitro.cli import main as sim_main
from k3sdaas_localnet.nitro.image import build_eif, build_time, identity_metadata
from k3sdaas_localnet.nitro.state import SimState

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "nitro" / "golden"
GOLDEN_INSTANCE = "i-085fa5ca0e3bda2cb"
LOG_PATH = re.compile(r'error log found at "[^"]*/err\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}\+00:00\.log"')


def golden(name: str) -> str:
    return (GOLDEN / name).read_text()


def normalise_log_paths(text: str) -> str:
    return LOG_PATH.sub('error log found at "LOG"', text)


def rootfs_tar(path: Path, files: dict[str, bytes], *, mtime: int = 0, reverse: bool = False) -> Path:
    names = sorted(files, reverse=reverse)
    with tarfile.open(path, "w") as tar:
        for directory in sorted({str(Path(n).parent) for n in names if str(Path(n).parent) != "."}):
            info = tarfile.TarInfo(f"./{directory}")
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            tar.addfile(info)
        for name in names:
            info = tarfile.TarInfo(f"./{name}")
            info.size, info.mode, info.mtime = len(files[name]), 0o755, mtime
            tar.addfile(info, io.BytesIO(files[name]))
    return path


APP_FILES = {"bin/app": b"#!/bin/sh\necho app\n", "etc/app.conf": b"answer=42\n"}


@pytest.fixture
def make_eif(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "nginx.eif", files: dict[str, bytes] | None = None, metadata: dict | None = None) -> Path:
        tar = rootfs_tar(tmp_path / f"{name}.tar", files or APP_FILES)
        output = tmp_path / name
        build_eif(
            tar,
            output,
            command=["/bin/app"],
            env=["PATH=/bin"],
            metadata=metadata
            or identity_metadata(name.removesuffix(".eif"), "1", {"Id": "sha256:00"}, None, build_time()),
        )
        return output

    return make


@dataclass
class SimRun:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def sim_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimState]:
    """A private simulator: headless enclaves (no Docker), the golden transcript's instance ID."""
    root = tmp_path / "state"
    monkeypatch.setenv("K3SDAAS_NITRO_SIM_STATE", str(root))
    monkeypatch.setenv("K3SDAAS_NITRO_SIM_RUNTIME", "none")
    monkeypatch.setenv("K3SDAAS_NITRO_SIM_INSTANCE_ID", GOLDEN_INSTANCE)
    monkeypatch.setenv("K3SDAAS_NITRO_SIM_ALLOCATOR", str(tmp_path / "no-allocator.yaml"))
    monkeypatch.delenv("NITRO_CLI_LOGS_PATH", raising=False)
    state = SimState(root)
    yield state
    for record in state.records():  # never leave enclave processes behind
        try:
            os.kill(record.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@pytest.fixture
def sim(sim_state: SimState, capsys: pytest.CaptureFixture[str]) -> Callable[..., SimRun]:
    def run(*argv: str) -> SimRun:
        capsys.readouterr()
        code = sim_main(list(argv))
        out, err = capsys.readouterr()
        return SimRun(code, out, err)

    return run
