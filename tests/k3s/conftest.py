"""A ``k3sdaas-localnet kube`` stand-in per test module and bootstrap tokens on it, for the K3s roles' tests."""

from __future__ import annotations

import base64
import hashlib
import secrets
import shutil
import signal
import string
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "collections/ansible_collections/k3sdaas/core/roles"
NODE_TOKEN_GROUP = "system:bootstrappers:k3s:default-node-token"  # what `k3s token create` gives a token
# The machine's kubectl, else the Debian 1.20 one scripts/setup.sh unpacks.
KUBECTL = shutil.which("kubectl") or str(REPO / ".state/kubectl-1.20/usr/bin/kubectl")


@dataclass
class Kube:
    url: str
    state: Path
    kubeconfig: Path
    process: subprocess.Popen[str]

    @property
    def ca_hash(self) -> str:
        return hashlib.sha256((self.state / "ca.pem").read_bytes()).hexdigest()

    def api(self) -> client.ApiClient:
        return config.new_client_from_config(str(self.kubeconfig))

    def join_token(self, expiration: str = "") -> str:
        """A fresh bootstrap token as the master hands it out: ``K10<CA sha256>::<id>.<secret>`` (RFC 3339
        ``expiration``, as the master's 10-minute tokens have, or none)."""
        alphabet = string.ascii_lowercase + string.digits
        token_id = "".join(secrets.choice(alphabet) for _ in range(6))
        secret = "".join(secrets.choice(alphabet) for _ in range(16))
        data = {"token-id": token_id, "token-secret": secret, "usage-bootstrap-authentication": "true",
                "usage-bootstrap-signing": "true", "auth-extra-groups": NODE_TOKEN_GROUP,
                **({"expiration": expiration} if expiration else {})}
        body = client.V1Secret(metadata=client.V1ObjectMeta(name=f"bootstrap-token-{token_id}"),
                               type="bootstrap.kubernetes.io/token",
                               data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()})
        client.CoreV1Api(self.api()).create_namespaced_secret("kube-system", body)
        return f"K10{self.ca_hash}::{token_id}.{secret}"


def start_kube(state: Path, *args: str) -> Kube:
    process = subprocess.Popen([sys.executable, "-m", "k3sdaas_localnet", "kube", "--state", str(state), "--port", "0",
                                *args], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    assert line.startswith("k3sdaas-localnet kube listening on https://"), line
    process.stdout.readline()
    kubeconfig = state / "admin.kubeconfig"
    assert yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"] == line.rsplit(" ", 1)[1]
    return Kube(line.rsplit(" ", 1)[1], state, kubeconfig, process)


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    server = start_kube(tmp_path_factory.mktemp("kube") / "state", "--node-grace-seconds", "3")
    yield server
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=15)
