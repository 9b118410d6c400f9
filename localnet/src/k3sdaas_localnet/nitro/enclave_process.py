"""The per-enclave process run-enclave spawns (nitro-cli's "enclave process"): it serves the simulated
NSM on a socket, runs the EIF's application as a container, copies its output to the console log, and
removes the enclave's record when the application exits or it is told to terminate (SIGTERM).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import FrameType

from k3sdaas.errors import InvalidInput, K3sdaasError
from k3sdaas.nitro.measure import ZERO_PCR, measure_string
from k3sdaas_localnet.nitro import docker
from k3sdaas_localnet.nitro.image import KERNEL_CONFIG_HEADER, read_application
from k3sdaas_localnet.nitro.nsm_sim import NsmServer, SimulatedNsm, boot_pcrs
from k3sdaas_localnet.nitro.pki import SimulatedPki, load_or_create
from k3sdaas_localnet.nitro.state import ROLE_ENV, RUNTIME_ENV, EnclaveRecord, SimState, instance_id

NETWORK_ENV = "K3SDAAS_NITRO_SIM_NETWORK"  # the enclave has no NIC: "none" unless a test needs otherwise
IN_CONTAINER_RUN_DIR = "/run/nitro-sim"
IMAGE_REPOSITORY = "k3sdaas-nitro-sim/eif"


class PkiSource:
    """Hands the NSM a CA chain that outlives the next 3-hour leaf, renewing it on disk when needed."""

    def __init__(self, state: SimState, instance: str) -> None:
        self.state, self.instance = state, instance
        self.pki: SimulatedPki | None = None

    def __call__(self, now: datetime) -> SimulatedPki:
        if self.pki is None or self.pki.refreshed(now) is not self.pki:
            with self.state.locked():
                self.pki = load_or_create(self.state.root / "pki", self.instance, now)
        return self.pki


def _pcr(record: EnclaveRecord, name: str) -> bytes:
    return bytes.fromhex(record.measurements[name]) if name in record.measurements else ZERO_PCR


def make_nsm(state: SimState, record: EnclaveRecord) -> SimulatedNsm:
    instance = instance_id()
    role = os.environ.get(ROLE_ENV)
    pcrs = boot_pcrs(
        _pcr(record, "PCR0"),
        _pcr(record, "PCR1"),
        _pcr(record, "PCR2"),
        pcr8=_pcr(record, "PCR8"),
        instance_pcr=measure_string(instance),
        role_pcr=measure_string(role) if role else ZERO_PCR,
        debug=record.debug_mode,
    )
    return SimulatedNsm(PkiSource(state, instance), record.enclave_id, pcrs)


def ensure_image(eif_path: Path, pcr0: str) -> str:
    """The EIF's own application (not whatever image is tagged now), imported once per PCR0."""
    reference = f"{IMAGE_REPOSITORY}:{pcr0[:32]}"
    if docker.image_inspect(reference) is None:
        application = read_application(eif_path)
        docker.import_rootfs(application.rootfs_tar, reference, application.command, application.env)
    return reference


class Enclave:
    def __init__(self, state: SimState, record: EnclaveRecord) -> None:
        self.state, self.record = state, record
        self.run_dir = state.run_dir(record.slot)
        self.stop = threading.Event()
        self.server: NsmServer | None = None
        self.logs: subprocess.Popen[bytes] | None = None
        self.runtime = os.environ.get(RUNTIME_ENV, "docker")
        if self.runtime not in ("docker", "none"):
            raise InvalidInput(f"{RUNTIME_ENV} must be docker or none, not {self.runtime!r}", field=RUNTIME_ENV)

    def boot(self) -> None:
        (self.run_dir / "vsock").mkdir(parents=True, exist_ok=True)
        link = self.state.vsock_link(self.record.cid)
        link.parent.mkdir(exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(self.run_dir / "vsock")
        self.server = NsmServer(make_nsm(self.state, self.record), str(self.run_dir / "nsm.sock")).start()
        console = self.state.console_log(self.record.slot).open("ab")
        kernel = KERNEL_CONFIG_HEADER.split()[2]
        console.write(f"[    0.000000] Linux version {kernel} (k3sdaas nitro simulator)\n".encode())
        console.flush()
        if self.runtime == "docker":
            self.record.container = self._start_container()
            self.logs = subprocess.Popen(
                [docker.DOCKER, "logs", "-f", self.record.container], stdout=console, stderr=subprocess.STDOUT
            )
        self.record.status = "running"
        self.state.save(self.record)

    def _start_container(self) -> str:
        image = ensure_image(Path(self.record.eif_path), self.record.measurements["PCR0"])
        name = f"k3sdaas-enclave-{self.record.slot}"
        cpus = min(len(self.record.cpu_ids), os.cpu_count() or 1)
        docker.docker(
            "run",
            "-d",
            "--name",
            name,
            "--network",
            os.environ.get(NETWORK_ENV, "none"),
            "--memory",
            f"{self.record.memory_mib}m",
            "--cpus",
            str(cpus),
            "--label",
            f"k3sdaas.nitro.enclave-id={self.record.enclave_id}",
            # A sibling container outlives its parent host; this names the parent so its owner can clean up.
            "--label",
            f"k3sdaas.nitro.parent={socket.gethostname()}",
            "-v",
            f"{self.run_dir}:{IN_CONTAINER_RUN_DIR}",
            "-e",
            f"K3SDAAS_NSM_SOCKET={IN_CONTAINER_RUN_DIR}/nsm.sock",
            "-e",
            f"K3SDAAS_VSOCK_DIR={IN_CONTAINER_RUN_DIR}/vsock",
            image,
        )
        return name

    def wait(self) -> None:
        """Until terminated, or (like a real enclave rebooting) until the application exits."""
        waiter = None
        if self.record.container:
            waiter = subprocess.Popen(
                [docker.DOCKER, "wait", self.record.container], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        while not self.stop.wait(0.2):
            if waiter is not None and waiter.poll() is not None:
                return
        if waiter is not None:
            waiter.kill()

    def shutdown(self, *, keep_record: bool = False) -> None:
        """Stop everything; a failed boot keeps its record so run-enclave can report the error."""
        if self.record.container:
            try:
                docker.docker("rm", "-f", self.record.container)
            except docker.DockerFailed:
                pass  # already gone
        if self.logs is not None:
            self.logs.kill()
        if self.server is not None:
            self.server.close()
        if not keep_record:
            with self.state.locked():
                self.state.remove(self.record.slot)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.state.vsock_link(self.record.cid).unlink(missing_ok=True)
        self.state.console_log(self.record.slot).unlink(missing_ok=True)


def main(argv: Sequence[str]) -> int:
    state = SimState(Path(argv[0]))
    record = state.load(argv[1])
    if record is None:
        return 1
    enclave = Enclave(state, record)

    def terminate(signum: int, frame: FrameType | None) -> None:
        enclave.stop.set()

    signal.signal(signal.SIGTERM, terminate)
    try:
        enclave.boot()
    except (K3sdaasError, OSError) as exc:  # any boot failure is reported to run-enclave as E36
        enclave.shutdown(keep_record=True)
        record.status, record.error = "failed", str(exc)
        state.save(record)
        return 1
    enclave.wait()
    enclave.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
