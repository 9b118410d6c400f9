"""Joins the cluster and keeps the Node alive, as kubelet does: register, Lease every 10 s, pods Running."""

from __future__ import annotations

import base64
import json
import os
import platform
import secrets
import socket
import ssl
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from k3sdaas_localnet.k3s.config import AgentConfig
from k3sdaas_localnet.k3s.token import TIMEOUT, Token, fetch_server_ca

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40  # kubelet's nodeLeaseDurationSeconds
RENEW_INTERVAL = 10.0  # a quarter of the lease duration, as kubelet renews
STATUS_REPORT_INTERVAL = 60.0  # node status is re-posted this often even when nothing changed
MAX_RESPONSE_BYTES = 16 << 20
NODE_ID_FILE = Path("/etc/rancher/node/id")
ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Api:
    """A minimal Kubernetes API client over the stdlib, with one ``Authorization`` header."""

    def __init__(self, server: str, ca: bytes, authorization: str) -> None:
        self.server = server
        self.context = ssl.create_default_context(cadata=ca.decode())
        self.authorization = authorization

    def request(self, method: str, path: str, data: bytes | None, headers: dict[str, str]) -> bytes:
        request = urllib.request.Request(f"{self.server}{path}", data=data, method=method, headers={
            "Authorization": self.authorization, "User-Agent": "k3s-stand-in-agent/kubelet", **headers})
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=TIMEOUT) as response:
                return bytes(response.read(MAX_RESPONSE_BYTES))
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read(65536)).get("message", error.reason)
            except ValueError:
                message = error.reason
            raise ApiError(error.code, str(message)) from None

    def call(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        data = None if body is None else json.dumps(body).encode()
        answer = self.request(method, path, data, {"Accept": "application/json", "Content-Type": content_type})
        return json.loads(answer or b"{}")


def write_secret(path: Path, data: bytes) -> None:
    """0600 from the start (stdlib only: the stand-in runs on the host's python3, without cryptography)."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(data)


def node_id() -> str:
    """The random suffix --with-node-id appends, kept in /etc/rancher/node/id like K3s keeps it."""
    if NODE_ID_FILE.exists():
        return NODE_ID_FILE.read_text().strip()[:8]
    NODE_ID_FILE.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(4)
    NODE_ID_FILE.write_text(value + "\n")
    return value


def local_ip(server: str) -> str:
    """The address this host uses towards the server (what the kubelet reports as InternalIP)."""
    parsed = urllib.parse.urlsplit(server)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((parsed.hostname or "127.0.0.1", parsed.port or 6443))
        return str(probe.getsockname()[0])


def read_first(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip().splitlines()[0]
    except (OSError, IndexError):
        return default


def os_image() -> str:
    for line in Path("/etc/os-release").read_text().splitlines() if Path("/etc/os-release").exists() else []:
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def memory_ki() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{line.split()[1]}Ki"
    return "0Ki"


class Agent:
    def __init__(self, config: AgentConfig, version: str, hostname: str) -> None:
        self.config = config
        self.version = version
        self.hostname = hostname
        self.name = f"{config.node_name}-{node_id()}" if config.with_node_id else config.node_name
        self.stop = threading.Event()
        self.api: Api | None = None
        self.address = ""
        self.started = now()

    # --- join ---
    def connect(self, token: Token) -> None:
        ca = fetch_server_ca(self.config.server, token)
        agent_dir = self.config.data_dir / "agent"
        agent_dir.mkdir(parents=True, exist_ok=True)
        (agent_dir / "server-ca.crt").write_bytes(ca)
        # K3s keeps the node password in /etc/rancher/node/password; the stand-in keeps it with its data.
        password_file = agent_dir / "node-password"
        if not password_file.exists():
            write_secret(password_file, secrets.token_hex(16).encode())
        password = password_file.read_text().strip()
        basic = base64.b64encode(f"{self.name}:{password}".encode()).decode()  # the stand-in's system:node:<name>
        # At every start K3s fetches the kubelet certificate with the node's own identity when it has one (so a
        # node outlives its bootstrap token) and falls back to the token when the server refuses that identity
        # (the Node was deleted, or this host last joined another cluster): k3s-io/k3s#6663 and #7836.
        certificate = agent_dir / "client-kubelet.crt"
        credentials = ([f"Basic {basic}"] if certificate.exists() else []) + [token.authorization()]
        for attempt, authorization in enumerate(credentials, 1):
            try:
                issued = Api(self.config.server, ca, authorization).request(
                    "GET", "/v1-k3s/client-kubelet.crt", None, {"k3s-Node-Name": self.name,
                                                               "k3s-Node-Password": password})
                break
            except ApiError as error:
                if error.status != 401 or attempt == len(credentials):
                    raise
        write_secret(certificate, issued)  # certificate and key, as K3s keeps them
        self.api = Api(self.config.server, ca, f"Basic {basic}")
        self.address = self.config.node_ip or local_ip(self.config.server)

    def node_object(self) -> dict[str, Any]:
        arch = ARCHES.get(platform.machine(), platform.machine())
        labels = {
            "beta.kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
            "kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": "k3s", **self.config.labels,
        }
        annotations = {
            "k3s.io/hostname": self.hostname, "k3s.io/internal-ip": self.address,
            "node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            "k3sdaas.io/simulated": "true",
        }
        spec: dict[str, Any] = {"providerID": f"k3s://{self.name}"}
        if self.config.taints:
            spec["taints"] = self.config.taints
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.name, "labels": labels, "annotations": annotations}, "spec": spec}

    def node_status(self) -> dict[str, Any]:
        stamp = now()
        capacity = {"cpu": str(os.cpu_count() or 1), "memory": memory_ki(), "pods": "110",
                    "ephemeral-storage": "10Gi", "hugepages-2Mi": "0"}

        def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
            return {"type": kind, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": stamp, "lastTransitionTime": self.started}

        return {
            "capacity": capacity, "allocatable": capacity,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                          "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status (SIMULATED k3s agent)"),
            ],
            "addresses": [{"type": "InternalIP", "address": self.address}, {"type": "Hostname", "address": self.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": read_first("/etc/machine-id"), "systemUUID": read_first("/sys/class/dmi/id/product_uuid"),
                "bootID": read_first("/proc/sys/kernel/random/boot_id"), "kernelVersion": platform.release(),
                "osImage": os_image(), "containerRuntimeVersion": "simulated://k3sdaas-localnet",
                "kubeletVersion": self.version, "kubeProxyVersion": self.version,
                "operatingSystem": "linux", "architecture": ARCHES.get(platform.machine(), platform.machine()),
            },
        }

    def register(self) -> None:
        """Create the Node, or take over an existing one of that name (kubelet re-registration)."""
        assert self.api
        node = self.node_object()
        try:
            self.api.call("POST", "/api/v1/nodes", node)
        except ApiError as error:
            if error.status != 409:
                raise
            patch = {"metadata": {"labels": node["metadata"]["labels"], "annotations": node["metadata"]["annotations"]}}
            self.api.call("PATCH", f"/api/v1/nodes/{self.name}", patch, "application/merge-patch+json")
        self.report_status()

    def report_status(self) -> None:
        assert self.api
        self.api.call("PATCH", f"/api/v1/nodes/{self.name}/status", {"status": self.node_status()},
                      "application/merge-patch+json")

    # --- keep alive ---
    def renew_lease(self) -> None:
        assert self.api
        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_DURATION_SECONDS, "renewTime": now_micro()}
        try:
            lease = self.api.call("GET", f"{path}/{self.name}")
        except ApiError as error:
            if error.status != 404:
                raise
            self.api.call("POST", path, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                         "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE}, "spec": spec})
            return
        lease["spec"] = {**lease.get("spec", {}), **spec}
        self.api.call("PUT", f"{path}/{self.name}", lease)

    def report_pods(self) -> None:
        """Pods bound here that are not Running yet become Running, as KWOK's fake kubelet reports them."""
        assert self.api
        selector = urllib.parse.quote(f"spec.nodeName={self.name}")
        pods = self.api.call("GET", f"/api/v1/pods?fieldSelector={selector}").get("items", [])
        for pod in pods:
            meta, status = pod["metadata"], pod.get("status", {})
            if status.get("phase") == "Running" or meta.get("deletionTimestamp"):
                continue
            stamp = now()
            containers = [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True,
                           "restartCount": 0, "started": True, "containerID": f"simulated://{meta['uid']}-{c['name']}",
                           "state": {"running": {"startedAt": stamp}}}
                          for c in pod.get("spec", {}).get("containers", [])]
            conditions = [{"type": kind, "status": "True", "lastTransitionTime": stamp}
                          for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]
            self.api.call("PATCH", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                          {"status": {"phase": "Running", "hostIP": self.address, "podIP": self.address,
                                      "startTime": stamp, "conditions": conditions, "containerStatuses": containers}},
                          "application/merge-patch+json")

    def run(self) -> None:
        """Renew the lease every RENEW_INTERVAL until stopped; API errors are logged and retried, like kubelet."""
        since_status = 0.0
        while not self.stop.is_set():
            try:
                self.renew_lease()
                self.report_pods()
                since_status += RENEW_INTERVAL
                if since_status >= STATUS_REPORT_INTERVAL:
                    self.report_status()
                    since_status = 0.0
            except (ApiError, OSError) as error:
                print(f"k3s agent (SIMULATED): {error}", file=sys.stderr, flush=True)
            self.stop.wait(RENEW_INTERVAL)
