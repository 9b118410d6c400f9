"""build-enclave and run-enclave with the Docker engine: a tiny imported image, then the base image."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import cbor2
import pytest

from k3sdaas.attestation import PcrPolicy, load_root, verify_attestation
from k3sdaas.nitro.eif import read_eif

from .conftest import golden

pytestmark = pytest.mark.docker

HOST_FILES = {  # dash and coreutils' sleep with the C library they link against
    "bin/sh": "/bin/dash",
    "bin/sleep": "/bin/sleep",
    "lib/x86_64-linux-gnu/libc.so.6": "/lib/x86_64-linux-gnu/libc.so.6",
    "lib64/ld-linux-x86-64.so.2": "/lib64/ld-linux-x86-64.so.2",
}
APP = 'echo hello-from-enclave; [ -S "$K3SDAAS_NSM_SOCKET" ] && echo nsm-socket-present; exec sleep 600'


def _docker(*args: str, stdin: bytes | None = None) -> str:
    proc = subprocess.run(["docker", *args], input=stdin, capture_output=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


@pytest.fixture(scope="module")
def tiny_image(docker_engine) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, source in HOST_FILES.items():
            tar.add(os.path.realpath(source), arcname=name)
    reference = f"k3sdaas-test/nitro-tiny:{uuid.uuid4().hex[:12]}"
    _docker(
        "import",
        "--change",
        f"CMD {json.dumps(['/bin/sh', '-c', APP])}",
        "--change",
        "ENV GREETING=hi",
        "-",
        reference,
        stdin=buffer.getvalue(),
    )
    yield reference
    subprocess.run(["docker", "rmi", "-f", reference], capture_output=True, check=False)


def _forget_imported(eif: Path) -> None:
    tag = f"k3sdaas-nitro-sim/eif:{read_eif(eif).measurements.pcr0.hex()[:32]}"
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)


def _wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_build_enclave_matches_golden_streams(sim, tiny_image, tmp_path, monkeypatch):
    monkeypatch.setenv("K3SDAAS_NITRO_SIM_RUNTIME", "docker")
    first = sim("build-enclave", "--docker-uri", tiny_image, "--output-file", str(tmp_path / "one.eif"))
    assert first.code == 0 and first.stderr == golden("build-enclave.stderr")
    measurements = json.loads(first.stdout)["Measurements"]
    assert list(measurements) == ["HashAlgorithm", "PCR0", "PCR1", "PCR2"]
    expected = golden("build-enclave.stdout")
    for name, value in json.loads(expected)["Measurements"].items():
        expected = expected.replace(value, measurements[name])  # only the PCR values differ from AWS's build
    assert first.stdout == expected
    second = sim(
        "build-enclave",
        "--docker-uri",
        tiny_image,
        "--output-file",
        str(tmp_path / "two.eif"),
        "--name",
        "tiny",
        "--version",
        "7",
    )
    assert json.loads(second.stdout) == json.loads(first.stdout)  # metadata never moves the PCRs
    described = json.loads(sim("describe-eif", "--eif-path", str(tmp_path / "one.eif")).stdout)
    image_id = json.loads(_docker("image", "inspect", tiny_image))[0]["Id"]
    assert described["ImageName"] == tiny_image.split(":")[0]
    assert described["ImageVersion"] == image_id.removeprefix("sha256:")
    assert described["Metadata"]["DockerInfo"]["Id"] == image_id
    renamed = json.loads(sim("describe-eif", "--eif-path", str(tmp_path / "two.eif")).stdout)
    assert (renamed["ImageName"], renamed["ImageVersion"]) == ("tiny", "7")


def test_missing_image_cannot_be_pulled(sim, docker_engine, tmp_path):
    result = sim("build-enclave", "--docker-uri", "k3sdaas-test/absent:none", "--output-file", str(tmp_path / "x.eif"))
    assert result.code == 50 and result.stderr.startswith(
        "Start building the Enclave Image...\n[ E50 ] Docker image pull"
    )


def test_run_enclave_runs_the_eif_as_a_container(sim, sim_state, tiny_image, tmp_path, monkeypatch):
    monkeypatch.setenv("K3SDAAS_NITRO_SIM_RUNTIME", "docker")
    eif = tmp_path / "tiny.eif"
    assert sim("build-enclave", "--docker-uri", tiny_image, "--output-file", str(eif)).code == 0
    try:
        run = sim("run-enclave", "--eif-path", str(eif), "--memory", "128", "--cpu-count", "1", "--debug-mode")
        assert run.code == 0, run.stderr
        info = json.loads(run.stdout)
        container = f"k3sdaas-enclave-{info['EnclaveID'].rsplit('-enc', 1)[1]}"
        inspected = json.loads(_docker("inspect", container))[0]
        assert inspected["State"]["Running"] and inspected["HostConfig"]["NetworkMode"] == "none"
        assert inspected["Config"]["Labels"]["k3sdaas.nitro.enclave-id"] == info["EnclaveID"]
        assert inspected["Config"]["Labels"]["k3sdaas.nitro.parent"] == socket.gethostname()  # local_hosts reads it
        assert "GREETING=hi" in inspected["Config"]["Env"]
        console_log = sim_state.console_log(container.rsplit("-", 1)[1])
        assert _wait_for(lambda: b"nsm-socket-present" in console_log.read_bytes())
        console = sim("console", "--enclave-id", info["EnclaveID"], "--disconnect-timeout", "1")
        assert "hello-from-enclave\nnsm-socket-present\n" in console.stdout
        assert sim("terminate-enclave", "--enclave-id", info["EnclaveID"]).code == 0
        gone = subprocess.run(["docker", "inspect", container], capture_output=True, check=False)
        assert gone.returncode != 0
    finally:
        _forget_imported(eif)


NSM_PROBE = r"""
import os, socket, struct, sys, time
request = bytes.fromhex(sys.argv[1])
sock = socket.socket(socket.AF_UNIX)
sock.connect(os.environ["K3SDAAS_NSM_SOCKET"])
sock.sendall(struct.pack(">I", len(request)) + request)
size = struct.unpack(">I", sock.recv(4, socket.MSG_WAITALL))[0]
print("NSM-RESPONSE", sock.recv(size, socket.MSG_WAITALL).hex(), flush=True)
time.sleep(600)
"""


def test_nsm_is_reachable_inside_the_enclave(sim, sim_state, docker_engine, tmp_path, monkeypatch):
    """The base image's python talks to the simulated NSM through the mounted socket, using raw frames."""
    if subprocess.run(
        ["docker", "image", "inspect", "k3sdaas-base:latest"], capture_output=True, check=False
    ).returncode:
        pytest.fail("k3sdaas-base:latest is not built: run scripts/setup.sh first")
    monkeypatch.setenv("K3SDAAS_NITRO_SIM_RUNTIME", "docker")
    request = cbor2.dumps({"Attestation": {"user_data": None, "nonce": b"inside", "public_key": b"pk"}})
    context = tmp_path / "context"
    context.mkdir()
    (context / "probe.py").write_text(NSM_PROBE)
    (context / "Dockerfile").write_text(
        f'FROM k3sdaas-base:latest\nCOPY probe.py /probe.py\nCMD ["python3", "/probe.py", "{request.hex()}"]\n'
    )
    reference = f"k3sdaas-test/nsm-probe:{uuid.uuid4().hex[:12]}"
    eif = tmp_path / "probe.eif"
    try:
        built = sim("build-enclave", "--docker-uri", reference, "--docker-dir", str(context), "--output-file", str(eif))
        assert built.code == 0, built.stderr
        run = sim("run-enclave", "--eif-path", str(eif), "--memory", "1024", "--cpu-count", "1")
        assert run.code == 0, run.stderr
        info = json.loads(run.stdout)
        console_log = sim_state.console_log(info["EnclaveID"].rsplit("-enc", 1)[1])
        assert _wait_for(lambda: b"NSM-RESPONSE" in console_log.read_bytes(), timeout=60)
        line = next(x for x in console_log.read_text().splitlines() if x.startswith("NSM-RESPONSE"))
        document = cbor2.loads(bytes.fromhex(line.split()[1]))["Attestation"]["document"]
        measured = read_eif(eif).measurements
        result = verify_attestation(
            document,
            root=load_root(sim_state.root / "pki" / "root.pem"),
            nonce=b"inside",
            public_key=b"pk",
            policy=PcrPolicy.for_image(measured.pcr0, measured.pcr1, measured.pcr2),
        )
        assert result.document.module_id == info["EnclaveID"]
        sim("terminate-enclave", "--all")
    finally:
        subprocess.run(["docker", "rmi", "-f", reference], capture_output=True, check=False)
        _forget_imported(eif)
