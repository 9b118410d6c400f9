"""Tiny enclave images, a private nitro-cli simulator, and one-step runs of the nitro_enclave playbook."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from helpers.playbook import REPO, run_playbook

PLAYBOOK = REPO / "tests" / "playbooks" / "nitro_enclave.yml"
SIM = [sys.executable, "-m", "k3sdaas_localnet.nitro.cli"]
SIM_IMAGES = "k3sdaas-nitro-sim/eif"
SLEEP = "/bin/sleep"
ALLOCATOR = "memory_mib: 1024\ncpu_count: 2\n"


def _libraries(binary: str) -> list[str]:
    """The shared objects a host binary loads (ldd), so it can run in an image without a distribution."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    return sorted(set(re.findall(r"(/\S+)\s+\(0x", out)))


def tiny_rootfs(version: str) -> bytes:
    """A few-MB root filesystem: sleep, its libraries and a version file that makes each image distinct."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in [SLEEP, *_libraries(SLEEP)]:
            tar.add(os.path.realpath(path), arcname=path.lstrip("/"))
        data = f"{version}\n".encode()
        info = tarfile.TarInfo("etc/enclave-version")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def docker(*args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(["docker", *args], input=stdin, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


@dataclass
class Sim:
    """A private simulator: its state directory, allocator settings and environment."""

    state: Path
    allocator: Path
    pcr0s: set[str] = field(default_factory=set)

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, K3SDAAS_NITRO_SIM_STATE=str(self.state),
                    K3SDAAS_NITRO_SIM_ALLOCATOR=str(self.allocator))

    def describe(self) -> list[dict[str, Any]]:
        done = subprocess.run([*SIM, "describe-enclaves"], env=self.env, capture_output=True, text=True, check=True)
        return json.loads(done.stdout)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    allocator = tmp_path / "allocator.yaml"
    allocator.write_text(ALLOCATOR)
    # a short root: enclave vsock ports are Unix sockets under it, and their paths are limited to 107 bytes
    simulator = Sim(Path(tempfile.mkdtemp(prefix="k3sdaas-sim-")), allocator)
    yield simulator
    subprocess.run([*SIM, "terminate-enclave", "--all"], env=simulator.env, capture_output=True, check=False)
    # the simulator imports each EIF's application once per PCR0 (k3sdaas_localnet.nitro.enclave_process)
    tags = [f"{SIM_IMAGES}:{pcr0[:32]}" for pcr0 in simulator.pcr0s]
    if tags:
        subprocess.run(["docker", "rmi", "-f", *tags], capture_output=True, check=False)
    shutil.rmtree(simulator.state, ignore_errors=True)


@pytest.fixture
def tiny_image() -> Iterator[Callable[[str], str]]:
    """make(version) tags a new tiny image under one repository per test and returns its image ID."""
    reference = f"k3sdaas-test/tiny-enclave:{uuid.uuid4().hex[:12]}"
    made: list[str] = []

    def make(version: str) -> str:
        changes = ["--change", 'CMD ["/bin/sleep", "infinity"]']
        made.append(docker("import", *changes, "-", reference, stdin=tiny_rootfs(version)).strip())
        return reference

    yield make
    if made:
        docker("rmi", "-f", *made)


@dataclass
class Step:
    result: dict[str, Any]
    output: str

    @property
    def changed(self) -> bool:
        return bool(self.result.get("changed"))

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed"))


@pytest.fixture
def steps(sim: Sim, tmp_path: Path) -> Callable[..., list[Step]]:
    """steps(*module_options): one ansible-playbook run calling the module once per dict, in order.

    A dict may add ``check: True`` to run that call in check mode; every call runs in diff mode.
    """
    counter = iter(range(1000))

    def run(*calls: dict[str, Any]) -> list[Step]:
        result_file = tmp_path / f"result-{next(counter)}.json"
        extra = {
            "nitro_sim_state": str(sim.state),
            "enclave_allocator_file": str(sim.allocator),
            "enclave_eif_path": str(tmp_path / "app.eif"),
            "enclave_steps": list(calls),
            "result_file": str(result_file),
        }
        done = run_playbook(PLAYBOOK, extra_vars=extra, local=True, json_report=False)
        output = done.output
        assert done.returncode == 0 and result_file.exists(), output
        results = json.loads(result_file.read_text())
        assert len(results) == len(calls), output
        sim.pcr0s.update(result["pcrs"]["PCR0"] for result in results if result.get("pcrs", {}).get("PCR0"))
        return [Step(result, output) for result in results]

    return run
