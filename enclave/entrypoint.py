"""The K3s-DaaS master enclave's command: loopback, vsock forwarding, the master service, k3s.

An enclave has no NIC, only vsock. This process (run by the enclave's /init, standard library only):

1. brings up the loopback interface when it is down (it is in a fresh Nitro enclave);
2. maps each outbound host name to a loopback address in /etc/hosts and forwards TCP connections to
   that address over vsock to the parent (CID 3), where vsock-proxy reaches the real host (Sui RPC);
3. forwards inbound vsock connections (port 6443) to the master service on 127.0.0.1;
4. starts the master service: ``python -m k3sdaas.nautilus`` when the runtime has it and the image has its
   settings (/etc/k3sdaas/nautilus-config.yaml, or K3SDAAS_NAUTILUS_CONFIG), otherwise a
   health endpoint that says plainly that the master service is not part of this image yet;
5. starts ``k3s server --disable-agent`` (sqlite through kine, no CNI) when a k3s binary was built in.

Under the k3sdaas nitro-cli simulator, ``K3SDAAS_VSOCK_DIR`` is set and vsock endpoints become Unix
sockets in that directory: ``listen-<port>.sock`` for a vsock port the enclave listens on, and
``connect-<cid>-<port>.sock`` for a vsock address the enclave connects to.
If any child process exits, this process exits too, and the enclave terminates like a real one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CONFIG_ENV = "K3SDAAS_ENCLAVE_CONFIG"
DEFAULT_CONFIG = "/etc/k3sdaas/vsock.json"
VSOCK_DIR_ENV = "K3SDAAS_VSOCK_DIR"
HOSTS_ENV = "K3SDAAS_HOSTS_FILE"
K3S_ENV = "K3SDAAS_K3S_BINARY"
DEFAULT_K3S = "/usr/local/bin/k3s"
MASTER_CONFIG_ENV = "K3SDAAS_NAUTILUS_CONFIG"
DEFAULT_MASTER_CONFIG = "/etc/k3sdaas/nautilus-config.yaml"
K3S_DATA_DIR = "/var/lib/rancher/k3s"  # on the in-memory rootfs: /run and /tmp are noexec in an enclave
IFF_UP = 0x1
BUFFER = 65536


def log(message: str) -> None:
    print(f"k3sdaas-enclave: {message}", flush=True)


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


# ---------------------------------------------------------------- vsock (or its simulated stand-in)


def vsock_listener(port: int) -> socket.socket:
    directory = os.environ.get(VSOCK_DIR_ENV)
    if directory:
        path = Path(directory) / f"listen-{port}.sock"
        path.unlink(missing_ok=True)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
    else:
        server = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        server.bind((socket.VMADDR_CID_ANY, port))
    server.listen(64)
    return server


def vsock_connect(cid: int, port: int) -> socket.socket:
    directory = os.environ.get(VSOCK_DIR_ENV)
    if directory:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(str(Path(directory) / f"connect-{cid}-{port}.sock"))
    else:
        client = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        client.connect((cid, port))
    return client


def tcp_listener(address: str) -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(host_port(address))
    server.listen(64)
    return server


def tcp_connect(address: str) -> socket.socket:
    return socket.create_connection(host_port(address))


# ---------------------------------------------------------------- forwarding


def pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(BUFFER):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end, how in ((sink, socket.SHUT_WR), (source, socket.SHUT_RD)):
            with contextlib.suppress(OSError):
                end.shutdown(how)


def forward(server: socket.socket, connect: Any, name: str) -> None:
    """Accept forever; join every connection to a fresh upstream connection, both ways."""
    while True:
        client, _ = server.accept()
        try:
            upstream = connect()
        except OSError as exc:
            log(f"{name}: upstream unreachable: {exc}")
            client.close()
            continue
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=pump, args=(source, sink), daemon=True).start()


def start_forwarders(config: dict[str, Any]) -> list[socket.socket]:
    servers = []
    for rule in config.get("inbound", []):
        server = vsock_listener(int(rule["vsock_port"]))
        target = rule["target"]
        threading.Thread(target=forward, args=(server, lambda t=target: tcp_connect(t), rule["name"]),
                         daemon=True).start()
        log(f"inbound {rule['name']}: vsock port {rule['vsock_port']} -> {target}")
        servers.append(server)
    for rule in config.get("outbound", []):
        server = tcp_listener(rule["listen"])
        cid, port = int(rule["vsock_cid"]), int(rule["vsock_port"])
        threading.Thread(target=forward, args=(server, lambda c=cid, p=port: vsock_connect(c, p), rule["name"]),
                         daemon=True).start()
        log(f"outbound {rule['name']}: {rule['host']} = {rule['listen']} -> vsock {cid}:{port}")
        servers.append(server)
    return servers


# ---------------------------------------------------------------- network setup


def loopback_up() -> bool:
    try:
        return bool(int(Path("/sys/class/net/lo/flags").read_text(), 16) & IFF_UP)
    except (OSError, ValueError):
        return False


def bring_up_loopback() -> None:
    """A fresh enclave's lo is down and has no address; the simulator's container already has both."""
    if loopback_up():
        return
    subprocess.run(["ip", "addr", "add", "127.0.0.1/8", "dev", "lo"], check=False)
    subprocess.run(["ip", "link", "set", "dev", "lo", "up"], check=True)
    log("loopback up")


def map_hosts(config: dict[str, Any]) -> None:
    """Outbound host names resolve to their loopback forwarder, so TLS to them stays end to end."""
    hosts = Path(os.environ.get(HOSTS_ENV, "/etc/hosts"))
    current = hosts.read_text() if hosts.exists() else ""
    lines = [f"{host_port(rule['listen'])[0]} {rule['host']}" for rule in config.get("outbound", [])]
    missing = [line for line in lines if line not in current.splitlines()]
    if missing:
        with hosts.open("a") as handle:
            handle.write("".join(f"{line}\n" for line in missing))


# ---------------------------------------------------------------- services


def k3s_binary() -> Path | None:
    path = Path(os.environ.get(K3S_ENV, DEFAULT_K3S))
    return path if path.is_file() and os.access(path, os.X_OK) else None


def k3s_command(binary: Path, config: dict[str, Any]) -> list[str]:
    """Control plane only: no kubelet, no CNI, no kube-proxy (the enclave kernel lacks VXLAN, nftables, IPVS)."""
    port = str(config.get("k3s", {}).get("https_listen_port", 6444))
    return [str(binary), "server", "--disable-agent", "--https-listen-port", port, "--bind-address", "127.0.0.1",
            "--advertise-address", "127.0.0.1", "--data-dir", K3S_DATA_DIR, "--flannel-backend", "none",
            "--disable-network-policy", "--disable-kube-proxy", "--disable-cloud-controller",
            "--disable", "traefik,servicelb,local-storage,metrics-server",
            "--write-kubeconfig", f"{K3S_DATA_DIR}/kubeconfig.yaml", "--write-kubeconfig-mode", "0600"]


def master_config() -> Path:
    return Path(os.environ.get(MASTER_CONFIG_ENV, DEFAULT_MASTER_CONFIG))


def master_available() -> bool:
    """The master runs when the runtime has it and the image carries its settings (package id, …)."""
    try:
        return importlib.util.find_spec("k3sdaas.nautilus.__main__") is not None and master_config().is_file()
    except ModuleNotFoundError:
        return False


class HealthHandler(BaseHTTPRequestHandler):
    """Stands in for the master service until it exists: healthy, and honest about what is missing."""

    k3s_state = "not supplied at build time"

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # http.server's naming
        if self.path == "/healthz":
            self._reply(200, {"status": "ok", "service": "health-only",
                              "master": "the Nautilus master service is not in this image yet",
                              "k3s": self.k3s_state})
        else:
            self._reply(503, {"error": "the Nautilus master service is not in this image yet", "path": self.path})

    def log_message(self, format: str, *args: Any) -> None:  # http.server's signature
        log("health: " + format % args)


def main() -> int:
    config = json.loads(Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG)).read_text())
    bring_up_loopback()
    map_hosts(config)
    children: dict[str, subprocess.Popen[bytes]] = {}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())

    binary = k3s_binary()
    if binary is not None:
        children["k3s"] = subprocess.Popen(k3s_command(binary, config))
        HealthHandler.k3s_state = "running"
        log(f"k3s server started from {binary}")
    else:
        log(f"no k3s binary at {os.environ.get(K3S_ENV, DEFAULT_K3S)}: k3s is not started")

    listen = config["service"]["listen"]
    if master_available():
        children["master service"] = subprocess.Popen([sys.executable, "-m", "k3sdaas.nautilus"],
                                                      env=dict(os.environ, K3SDAAS_LISTEN=listen,
                                                               K3SDAAS_NAUTILUS_CONFIG=str(master_config())))
        log(f"master service started on {listen}")
    else:
        server = ThreadingHTTPServer(host_port(listen), HealthHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        log(f"health endpoint only on {listen}: the Nautilus master service is not in this image yet "
            f"(k3sdaas.nautilus with {master_config()})")

    start_forwarders(config)
    log("ready")
    while not stop.wait(0.5):
        for name, child in children.items():
            if child.poll() is not None:
                log(f"{name} exited with {child.returncode}; stopping the enclave")
                stop.set()
    for child in children.values():
        child.terminate()
    return 0 if all(child.returncode in (0, None, -signal.SIGTERM) for child in children.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
