"""enclave/entrypoint.py on the host, in the simulator's vsock mode (Unix sockets in K3SDAAS_VSOCK_DIR)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO

ENTRYPOINT = REPO / "enclave" / "entrypoint.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def wait_for_listener(address: str, timeout: float = 10.0) -> None:
    """The entrypoint opens its sockets one after another; a test must not race the later ones."""
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {address}"
            time.sleep(0.05)


def echo_parent(path: Path) -> socket.socket:
    """The parent's end of an outbound vsock port (vsock-proxy's place): echoes with a prefix."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.sendall(b"parent:" + connection.recv(1024))

    threading.Thread(target=serve, daemon=True).start()
    return server


@pytest.fixture
def enclave(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict]:
    """The entrypoint with a private config; ``request.param`` (indirect) is a k3s binary to supply."""
    vsock = tmp_path / "vsock"
    vsock.mkdir()
    config: dict[str, Any] = {
        "service": {"listen": f"127.0.0.1:{free_port()}"},
        "inbound": [{"name": "master-api", "vsock_port": 6443, "target": None}],
        "outbound": [{"name": "sui-rpc", "host": "rpc.example.test", "listen": f"127.0.0.64:{free_port()}",
                      "vsock_cid": 3, "vsock_port": 8101}],
    }
    config["inbound"][0]["target"] = config["service"]["listen"]
    (tmp_path / "vsock.json").write_text(json.dumps(config))
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    env = dict(os.environ, K3SDAAS_ENCLAVE_CONFIG=str(tmp_path / "vsock.json"), K3SDAAS_VSOCK_DIR=str(vsock),
               K3SDAAS_HOSTS_FILE=str(hosts),
               K3SDAAS_K3S_BINARY=str(getattr(request, "param", None) or tmp_path / "no-k3s"))
    process = subprocess.Popen([sys.executable, str(ENTRYPOINT)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    parent = echo_parent(vsock / "connect-3-8101.sock")
    wait_for(vsock / "listen-6443.sock")
    for address in [config["service"]["listen"], *(route["listen"] for route in config["outbound"])]:
        wait_for_listener(address)
    yield {"config": config, "vsock": vsock, "hosts": hosts, "process": process}
    process.terminate()
    process.wait(timeout=10)
    parent.close()


def http_over_unix(path: Path, request_path: str) -> tuple[int, dict]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(path))
        client.sendall(f"GET {request_path} HTTP/1.0\r\n\r\n".encode())
        response = b""
        while chunk := client.recv(4096):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_inbound_vsock_reaches_the_health_endpoint(enclave) -> None:
    status, body = http_over_unix(enclave["vsock"] / "listen-6443.sock", "/healthz")
    assert status == 200 and body["status"] == "ok" and body["k3s"] == "not supplied at build time"
    status, body = http_over_unix(enclave["vsock"] / "listen-6443.sock", "/api/v1/attestation")
    assert status == 503 and "not in this image yet" in body["error"]


def test_outbound_tcp_goes_to_the_parent_over_vsock(enclave) -> None:
    assert "127.0.0.64 rpc.example.test" in enclave["hosts"].read_text().splitlines()
    host, port = enclave["config"]["outbound"][0]["listen"].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as client:
        client.sendall(b"hello")
        assert client.recv(1024) == b"parent:hello"


def test_terminates_cleanly_and_says_what_is_missing(enclave) -> None:
    enclave["process"].terminate()
    output, _ = enclave["process"].communicate(timeout=10)
    assert enclave["process"].returncode == 0
    assert "k3s is not started" in output and "the Nautilus master service is not in this image yet" in output


FAKE_K3S = Path("/tmp") / f"k3sdaas-fake-k3s-{os.getpid()}"


@pytest.fixture(scope="module", autouse=True)
def fake_k3s() -> Iterator[None]:
    """Stands in for a supplied k3s binary: records its argv, runs until killed."""
    FAKE_K3S.write_text('#!/bin/sh\necho $$ > "$0.pid"\necho "$@" > "$0.args"\nexec sleep 600\n')
    FAKE_K3S.chmod(0o755)
    yield
    FAKE_K3S.unlink(missing_ok=True)
    for suffix in (".args", ".pid"):
        Path(f"{FAKE_K3S}{suffix}").unlink(missing_ok=True)


@pytest.mark.parametrize("enclave", [FAKE_K3S], indirect=True)
def test_supplied_k3s_runs_control_plane_only_and_its_exit_stops_the_enclave(enclave) -> None:
    args_file = Path(f"{FAKE_K3S}.args")
    wait_for(args_file)
    args = args_file.read_text().split()
    assert args[:2] == ["server", "--disable-agent"]
    assert args[args.index("--https-listen-port") + 1] == "6444" and "--flannel-backend" in args
    _status, body = http_over_unix(enclave["vsock"] / "listen-6443.sock", "/healthz")
    assert body["k3s"] == "running"
    os.kill(int(Path(f"{FAKE_K3S}.pid").read_text()), signal.SIGKILL)  # k3s dies
    output, _ = enclave["process"].communicate(timeout=10)
    assert enclave["process"].returncode == 1 and "stopping the enclave" in output
