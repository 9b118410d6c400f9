"""A ``k3sdaas-localnet kube`` process per test module, kubectl binaries, and small HTTP helpers."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Kube:
    url: str
    state: Path
    process: subprocess.Popen[str]
    kubeconfig: Path
    token: str

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.state / "ca.pem"))

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
             headers: dict[str, str] | None = None, content_type: str = "application/json",
             raw: bytes | None = None) -> tuple[int, Any]:
        """(status, decoded JSON or text) of one request; ``token=""`` sends no credential."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method)
        token = self.token if token is None else token
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, context=self.context(), timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text


def start_kube(state: Path, *args: str) -> Kube:
    process = subprocess.Popen([sys.executable, "-m", "k3sdaas_localnet", "kube", "--state", str(state), "--port", "0",
                                *args], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    assert line.startswith("k3sdaas-localnet kube listening on https://"), line
    kubeconfig = state / "admin.kubeconfig"
    assert process.stdout.readline().strip() == f"kubeconfig: {kubeconfig}"
    token = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]
    return Kube(line.rsplit(" ", 1)[1], state, process, kubeconfig, token)


def stop_kube(kube: Kube) -> None:
    kube.process.send_signal(signal.SIGTERM)
    assert kube.process.wait(timeout=15) == 0, "SIGTERM should stop the server cleanly"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    server = start_kube(tmp_path_factory.mktemp("kube") / "state")
    yield server
    stop_kube(server)


def _version(binary: str) -> tuple[int, int]:
    out = subprocess.run([binary, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=30,
                         check=True)
    info = json.loads(out.stdout)["clientVersion"]
    return int(info["major"]), int(re.sub(r"\D", "", info["minor"]))


def find_kubectls() -> dict[tuple[int, int], str]:
    """Every kubectl here: setup's unpacked Debian 1.20, gcloud's ``kubectl.1.NN`` builds, any other on PATH."""
    candidates = [str(REPO / ".state/kubectl-1.20/usr/bin/kubectl")]
    on_path = shutil.which("kubectl")
    if on_path:
        real = Path(on_path).resolve()
        candidates += sorted(str(p) for p in real.parent.glob("kubectl.1.*"))
        if not (real.parent / "gcloud").exists():  # gcloud's `kubectl` is a dispatcher, not a kubectl
            candidates.append(str(real))
    found: dict[tuple[int, int], str] = {}
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            found.setdefault(_version(candidate), candidate)
    return found


KUBECTLS = find_kubectls()
EDGES = sorted({min(KUBECTLS), max(KUBECTLS)}) if KUBECTLS else []


@pytest.fixture(params=EDGES or [pytest.param(None, marks=pytest.mark.skip(reason="no kubectl; run scripts/setup.sh"))],
                ids=lambda v: f"kubectl-{v[0]}.{v[1]}" if v else "none")
def kubectl_version(request: pytest.FixtureRequest) -> tuple[int, int]:
    return request.param  # type: ignore[no-any-return]


@dataclass
class Kubectl:
    binary: str
    version: tuple[int, int]
    kube: Kube
    cache: Path

    def __call__(self, *args: str, kubeconfig: Path | None = None, stdin: str | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.binary, "--kubeconfig", str(kubeconfig or self.kube.kubeconfig),
                               "--cache-dir", str(self.cache), *args],
                              input=stdin, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def kubectl(kube: Kube, kubectl_version: tuple[int, int], tmp_path: Path) -> Kubectl:
    return Kubectl(KUBECTLS[kubectl_version], kubectl_version, kube, tmp_path / "cache")


def register_node(kube: Kube, name: str, labels: dict[str, str] | None = None,
                  taints: list[dict[str, str]] | None = None) -> None:
    """What a kubelet (the stand-in agent) does: the Node with a Ready condition, then its Lease."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints or []}}
    assert kube.call("POST", "/api/v1/nodes", node)[0] == 201
    status = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                         "message": "ready", "lastHeartbeatTime": stamp}]}}
    assert kube.call("PATCH", f"/api/v1/nodes/{name}/status", status,
                     content_type="application/strategic-merge-patch+json")[0] == 200
    renew_lease(kube, name)


def renew_lease(kube: Kube, name: str) -> None:
    path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    spec = {"holderIdentity": name, "leaseDurationSeconds": 40,
            "renewTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    status, lease = kube.call("GET", f"{path}/{name}")
    if status == 404:
        assert kube.call("POST", path, {"metadata": {"name": name}, "spec": spec})[0] == 201
    else:
        lease["spec"] = spec
        assert kube.call("PUT", f"{path}/{name}", lease)[0] == 200
