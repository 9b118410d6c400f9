"""The real master enclave image: reproducible PCRs (against enclave.lock.json), and it boots in the simulator."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REPO, SIM, Sim

pytestmark = [pytest.mark.docker, pytest.mark.slow]
LOCK = REPO / "enclave" / "enclave.lock.json"
# The base image is made by debootstrap on each machine from the live mirror (enclave/README.md).
MACHINE_DEPENDENT = {"base_image_id", "base_rootfs_sha256"}
REGENERATE = "run `.venv/bin/python enclave/build.py` and commit enclave/enclave.lock.json"


@pytest.fixture
def tag() -> Iterator[str]:
    reference = f"k3sdaas-enclave:test-{uuid.uuid4().hex[:12]}"
    yield reference
    subprocess.run(["docker", "rmi", "-f", reference], capture_output=True, check=False)


def build(tmp_path: Path, tag: str, name: str) -> dict:
    """enclave/build.py from scratch (no layer cache), with a private EIF and lock."""
    lock = tmp_path / f"{name}.lock.json"
    done = subprocess.run([sys.executable, str(REPO / "enclave" / "build.py"), "--no-cache", "--tag", tag,
                           "--eif", str(tmp_path / f"{name}.eif"), "--lock", str(lock)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(lock.read_text())


def healthz(path: Path, timeout: float = 120.0) -> dict:
    """GET /healthz through the enclave's inbound vsock port (a Unix socket under the simulator)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(str(path))
                client.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                response = b""
                while chunk := client.recv(4096):
                    response += chunk
            return json.loads(response.partition(b"\r\n\r\n")[2])
        except (OSError, ValueError):
            assert time.monotonic() < deadline, f"no health answer on {path}"
            time.sleep(0.5)


def test_enclave_image_is_reproducible_matches_the_lock_and_boots(tmp_path: Path, tag: str, sim: Sim) -> None:
    first = build(tmp_path, tag, "first")
    locked = json.loads(LOCK.read_text())
    changed = sorted(key for key in first["inputs"] if first["inputs"][key] != locked["inputs"].get(key))
    # Everything but the base image is pinned by the repository: a difference there is a stale lock.
    stale = [key for key in changed if key not in MACHINE_DEPENDENT]
    assert not stale, f"enclave/enclave.lock.json is stale ({', '.join(stale)} changed): {REGENERATE}"
    if "base_rootfs_sha256" not in changed:  # the same base content (the image ID may differ): the same PCRs
        assert first["measurements"] == locked["measurements"]
    else:  # this machine's mirror served other packages: the PCRs differ, but builds must still agree
        second = build(tmp_path, tag, "second")
        assert second["measurements"] == first["measurements"]
        digest = first["inputs"]["base_rootfs_sha256"]
        warnings.warn(f"the local base image's content ({digest}) differs from the lock's, so its PCRs cannot be "
                      "compared; two builds agreed", stacklevel=1)

    # nitro-cli's own rule: at least four times the EIF's size (the image grows with the runtime's dependencies)
    memory_mib = -(-4 * (tmp_path / "first.eif").stat().st_size // (1 << 20))
    sim.allocator.write_text(f"memory_mib: {memory_mib}\ncpu_count: 2\n")
    run = subprocess.run([*SIM, "run-enclave", "--eif-path", str(tmp_path / "first.eif"), "--memory", str(memory_mib),
                          "--cpu-count", "2"], env=sim.env, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    info = json.loads(run.stdout)
    sim.pcr0s.add(first["measurements"]["PCR0"])
    slot = info["EnclaveID"].rsplit("-enc", 1)[1]
    body = healthz(sim.state / "run" / slot / "vsock" / "listen-6443.sock")
    assert body["status"] == "ok" and body["k3s"] == "not supplied at build time"
    assert sim.describe()[0]["Measurements"]["PCR0"] == first["measurements"]["PCR0"]
