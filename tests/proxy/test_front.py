"""nginx in front of the master, at the byte level: an upgrade (SPDY, as kubectl <= 1.29 sends it) tunnelled to
an upstream that switches protocols, the headers that upstream receives, nginx's own errors as Status objects,
and the master without nginx."""

from __future__ import annotations

import json
import os
import queue
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from nautilus.conftest import Chain, Master, master_settings
from proxy.conftest import Identity

from k3sdaas.nautilus.identity import make_tls

EXEC = "/k8s/api/v1/namespaces/dev/pods/web/exec?command=sh&stdin=true&stdout=true"


class SwitchingUpstream:
    """A TLS server that answers every request with 101 (SPDY/3.1) and then echoes the bytes: what nginx must
    tunnel. It keeps each request's head for the test to read."""

    def __init__(self, directory: Path) -> None:
        self.tls = make_tls(directory, ["127.0.0.1", "kubernetes"])
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(self.tls.cert, self.tls.key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.heads: queue.Queue[tuple[str, list[tuple[str, str]]]] = queue.Queue()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(raw,), daemon=True).start()

    def _one(self, raw: socket.socket) -> None:
        with self.context.wrap_socket(raw, server_side=True) as conn:
            head = read_head(conn)
            line, *fields = head.decode("latin-1").split("\r\n")
            self.heads.put((line, [(k.strip().lower(), v.strip()) for k, v in (f.split(":", 1) for f in fields)]))
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                         b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")
            while data := conn.recv(65536):
                conn.sendall(data)

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "up",
            "clusters": [{"name": "up", "cluster": {"server": f"https://127.0.0.1:{self.port}",
                                                    "certificate-authority": str(self.tls.cert)}}],
            "users": [{"name": "master", "user": {"token": "the-masters-own-token"}}],
            "contexts": [{"name": "up", "context": {"cluster": "up", "user": "master"}}]}))
        return path


def read_head(conn: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(1)
        if not chunk:
            break
        head += chunk
    return head.split(b"\r\n\r\n", 1)[0]


def raw_request(master: Master, request: bytes, *, tls: bool = True) -> tuple[str, dict[str, str], bytes]:
    """Send bytes as they are; (status line, headers, body) of the answer."""
    host, port = master.url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(master.cert))
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        conn = context.wrap_socket(sock, server_hostname=host) if tls else sock
        try:
            conn.sendall(request)
        except OSError:  # nginx may answer (414, 431) and close before a huge request is all sent
            pass
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except OSError:  # the close that follows such an answer; what came before it is the answer
            pass
    head, _, body = answer.partition(b"\r\n\r\n")
    line, *fields = head.decode("latin-1").split("\r\n")
    return line, {k.strip().lower(): v.strip() for k, v in (f.split(":", 1) for f in fields)}, body


@pytest.fixture(scope="module")
def switching(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchingUpstream]:
    upstream = SwitchingUpstream(tmp_path_factory.mktemp("switching"))
    yield upstream
    upstream.listener.close()


@pytest.fixture(scope="module")
def tunnel_master(make_master: Callable[..., Master], switching: SwitchingUpstream,
                  tmp_path_factory: pytest.TempPathFactory) -> Master:
    return make_master(k3s={"kubeconfig": str(switching.kubeconfig(tmp_path_factory.mktemp("up") / "kubeconfig"))})


def test_spdy_exec_is_tunnelled_after_the_101_with_only_the_masters_identity_headers(
        tunnel_master: Master, switching: SwitchingUpstream, identities: dict[str, Identity]) -> None:
    developer = identities["developer"]
    session = tunnel_master.login(developer.signer, developer.token_id)
    host, port = tunnel_master.url.removeprefix("https://").rsplit(":", 1)
    request = (f"POST {EXEC} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {session}\r\n"
               "Impersonate-User: system:admin\r\nImpersonate-Group: system:masters\r\nImpersonate-Uid: 0\r\n"
               "Impersonate-Extra-Scopes: all\r\nX-Remote-User: system:admin\r\nX-Remote-Extra-Reason: x\r\n"
               "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
               "Content-Length: 0\r\n\r\n").encode()
    context = ssl.create_default_context(cafile=str(tunnel_master.cert))
    with socket.create_connection((host, int(port)), timeout=30) as sock, \
            context.wrap_socket(sock, server_hostname=host) as conn:
        conn.sendall(request)
        assert read_head(conn).startswith(b"HTTP/1.1 101 "), "no 101 from the tunnel"
        frame = b"\x80\x03\x00\x01\x00\x00\x00\x0aspdy-bytes" * 100  # opaque to nginx: whatever the protocol
        conn.sendall(frame)
        echoed = b""
        while len(echoed) < len(frame):
            echoed += conn.recv(65536)
        assert echoed == frame
    line, headers = switching.heads.get(timeout=10)
    assert line == f"POST {EXEC.removeprefix('/k8s')} HTTP/1.1"
    seen = dict(headers)
    assert [v for k, v in headers if k == "impersonate-user"] == [f"sui:{developer.signer.address}"]
    assert [v for k, v in headers if k == "impersonate-group"] == ["k3sdaas:developer"]
    assert [v for k, v in headers if k == "authorization"] == ["Bearer the-masters-own-token"]
    assert not [k for k, _ in headers if k.startswith(("impersonate-uid", "impersonate-extra-", "x-remote-"))]
    assert seen["upgrade"] == "SPDY/3.1" and seen["connection"].lower() == "upgrade"
    assert seen["x-stream-protocol-version"] == "v4.channel.k8s.io"


def test_a_refused_upgrade_never_reaches_the_upstream(tunnel_master: Master, switching: SwitchingUpstream,
                                                      identities: dict[str, Identity]) -> None:
    viewer = identities["viewer"]
    session = tunnel_master.login(viewer.signer, viewer.token_id)
    line, headers, body = raw_request(tunnel_master, (
        f"POST {EXEC} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {session}\r\nConnection: Upgrade, close\r\n"
        "Upgrade: SPDY/3.1\r\nContent-Length: 0\r\n\r\n").encode())
    assert line.startswith("HTTP/1.1 403 ") and headers["content-type"] == "application/json"
    assert "the viewer tier may only get, list and watch" in json.loads(body)["message"]
    assert switching.heads.empty()


@pytest.mark.parametrize(("request_bytes", "code", "reason"), [
    (b"GET /health HTTP/1.1\r\nHost: bad host name\r\nConnection: close\r\n\r\n", 400, "BadRequest"),
    (b"G@T /k8s/api HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400, "BadRequest"),
    (b"GET /k8s/api HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\nConnection: close\r\n\r\n", 431,
     "RequestHeaderFieldsTooLarge"),
    (b"GET /k8s/api HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 401, "Unauthorized"),
    (b"GET /k8s/" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 414, "RequestURITooLong"),
], ids=["bad-host", "bad-method", "huge-header", "no-session", "huge-uri"])
def test_nginx_refusals_are_status_objects(tunnel_master: Master, request_bytes: bytes, code: int,
                                           reason: str) -> None:
    line, headers, body = raw_request(tunnel_master, request_bytes)
    assert line.split()[1] == str(code), (line, body[:300])
    assert headers["content-type"] == "application/json"
    status = json.loads(body)
    assert (status["kind"], status["code"], status["reason"]) == ("Status", code, reason), status


def test_plain_http_on_the_tls_port_is_a_status(tunnel_master: Master) -> None:
    line, headers, body = raw_request(tunnel_master, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                      tls=False)
    assert line.split()[1] == "400" and headers["content-type"] == "application/json"
    assert json.loads(body)["message"] == "this port speaks HTTPS only"


def test_without_nginx_the_master_names_the_binary(chain: Chain, kube_dir: Path, nsm_socket: tuple[str, object],
                                                   tmp_path: Path) -> None:
    config = tmp_path / "nautilus-config.yaml"
    config.write_text(yaml.safe_dump(master_settings(chain, kube_dir, nsm_socket[0], tmp_path,
                                                     server={"nginx": "/nonexistent/nginx"})))
    done = subprocess.run([sys.executable, "-m", "k3sdaas.nautilus", "serve", "--config", str(config)],
                          capture_output=True, text=True, timeout=120, check=False, env=os.environ.copy())
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("k3sdaas-nautilus: server.front: nginx needs the nginx binary '/nonexistent/nginx'"), last


def test_front_none_serves_the_master_alone_and_says_where_the_proxy_is(
        make_master: Callable[..., Master], identities: dict[str, Identity]) -> None:
    master = make_master(server={"front": "none"})
    assert master.client.get("/health").json()["status"] == "ok"  # granian's own TLS
    assert not (master.state / "front").exists()
    viewer = identities["viewer"]
    response = master.get("/k8s/version", master.login(viewer.signer, viewer.token_id))
    assert response.status_code == 503 and "server.front: none" in response.json()["message"], response.text


def test_a_refusal_naming_a_huge_path_is_still_a_status(tunnel_master: Master, identities: dict[str, Identity]) -> None:
    viewer = identities["viewer"]
    session = tunnel_master.login(viewer.signer, viewer.token_id)
    response = tunnel_master.client.delete("/k8s/api/v1/namespaces/dev/pods/" + "a" * 12000,
                                           headers={"Authorization": f"Bearer {session}"})
    assert response.status_code == 403, response.text
    assert response.json()["message"].startswith('pods "aaa')
    # nginx routes on the normalized path and forwards the raw one: the decision refuses dot segments outright
    dotted = tunnel_master.client.get("/k8s/api/v1/namespaces/dev/pods/%2e%2e/%2e%2e/secrets",
                                      headers={"Authorization": f"Bearer {session}"})
    assert dotted.status_code == 400 and dotted.json()["message"] == "the request path has dot segments", dotted.text


def test_the_master_stops_its_nginx_with_itself(make_master: Callable[..., Master]) -> None:
    master = make_master()
    pid = int((master.state / "front" / "nginx.pid").read_text())
    assert Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"nginx: master process")
    assert master.stop() == 0  # SIGTERM
    assert not Path(f"/proc/{pid}").exists(), "nginx outlived the master"


def test_the_proxy_waits_for_the_kubeconfig_and_reloads_when_it_appears(
        make_master: Callable[..., Master], kube: Path, identities: dict[str, Identity], tmp_path: Path) -> None:
    kubeconfig = tmp_path / "later.kubeconfig"
    master = make_master(k3s={"kubeconfig": str(kubeconfig)})
    viewer = identities["viewer"]
    session = master.login(viewer.signer, viewer.token_id)
    waiting = master.get("/k8s/version", session)
    assert waiting.status_code == 502 and "does not exist yet" in waiting.json()["message"], waiting.text
    kubeconfig.write_text((kube / "admin.kubeconfig").read_text())  # the cluster comes up
    deadline = time.monotonic() + 10
    while (response := master.get("/k8s/version", session)).status_code != 200:
        assert time.monotonic() < deadline, response.text
        time.sleep(0.2)
    assert response.json()["major"] == "1"
