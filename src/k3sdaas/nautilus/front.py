"""nginx in front of the master (``server.front: nginx``, the default): the Kubernetes API proxy's data path.

The master process renders ``nginx.conf.tmpl`` into ``<state_dir>/front/``, starts Debian's nginx as its
child and stops it when it stops (SIGTERM; nginx also gets SIGTERM if the master dies). nginx listens on
the master's port with TLS 1.3 and the master's certificate (the attestation binds its SPKI), forwards the
master's own routes to granian on a Unix socket, and proxies the Kubernetes API paths to the API server
named by the master's kubeconfig after asking ``/_authz`` (``proxy.Decision``) through ``auth_request``:
client ``Impersonate-*``/``X-Remote-*`` headers cleared (headers-more), ``Authorization`` replaced by the
master's credential, ``Impersonate-User``/``-Group`` from the decision; unbuffered, upgrades (WebSocket and
SPDY exec) passed through after the 101.

Audit and rate limit: nginx writes one JSON line per proxied request into a FIFO that the master's worker
reads (``AccessLog``): each line becomes the request's audit record (identity and tier from the decision,
nginx's status and time), and a request admitted from nginx's cache is counted against the identity's rate
limit there, since the decision did not see it. There is one data path: without nginx the proxy paths
answer 503 (``server.front: none`` runs the master's own API alone, TLS in granian).
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import grp
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
from dataclasses import dataclass
from importlib import resources
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import K3sdaasError
from .config import NautilusConfig
from .identity import TlsFiles
from .proxy import MAX_BODY_BYTES, Decision, status
from .ratelimit import RateLimiter

log = logging.getLogger("k3sdaas.nautilus.front")
HEADERS_MORE = Path("/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so")
PIPE_BYTES = 1 << 20  # the FIFO's buffer: audit lines wait here while the worker is busy (then nginx waits)
WATCH_INTERVAL = 1.0
# nginx's own errors, as Status objects: (code nginx raises, code and message sent).
ERRORS = ((400, 400, "the request is malformed (request line, header or Host)"),
          (497, 400, "this port speaks HTTPS only"),
          (408, 408, "the request was not sent in time"),
          (413, 413, f"request body is larger than {MAX_BODY_BYTES} bytes"),
          (414, 414, "the request URI is too long"),
          (494, 431, "the request headers are too large"),
          (500, 503, "the master's decision is not answering; retry"),
          (502, 502, "the master is starting or unreachable; retry"),
          (504, 504, "the master did not answer in time"))
KUBE_ERRORS = ((502, 502, "the Kubernetes API is unreachable"),
               (504, 504, "the Kubernetes API did not answer in time"))


def nginx_binary(name: str) -> str:
    found = shutil.which(name, path=f"{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin")
    if not found:
        raise K3sdaasError(f"server.front: nginx needs the nginx binary {name!r} (Debian's nginx package), which is "
                           "not installed here (or set server.nginx to its path)", field="nginx")
    if not HEADERS_MORE.exists():
        raise K3sdaasError(f"server.front: nginx needs {HEADERS_MORE} (Debian's "
                           "libnginx-mod-http-headers-more-filter)", field="front")
    return found


def quoted(text: str) -> str:
    """A single-quoted nginx string; no '$' (nginx would read a variable)."""
    assert "$" not in text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def error_pages(errors: tuple[tuple[int, int, str], ...], name: str) -> tuple[list[str], str]:
    """(``error_page`` lines, the internal locations returning each Status). URIs, not named locations: nginx
    cannot redirect a request whose request line it could not parse to a named location."""
    pages = [f"error_page {raised} = /_{name}/{raised};" for raised, _, _ in errors]
    locations = "\n".join(f"    location = /_{name}/{raised} {{ internal; return {code} "
                          f"{quoted(json.dumps(status(code, message), separators=(',', ':')))}; }}"
                          for raised, code, message in errors)
    return pages, locations


@dataclass(frozen=True)
class KubeUpstream:
    """The API server as the master's kubeconfig names it, in the files nginx reads."""

    host: str
    port: int
    ssl_name: str
    ca_file: str | None  # None: insecure-skip-tls-verify
    cert_file: str | None
    key_file: str | None
    authorization: str  # "Bearer …", or "" with a client certificate


def load_upstream(kubeconfig: str, directory: Path) -> KubeUpstream:
    """Read the kubeconfig (client-go's rules, through the kubernetes library); inline data copied into files."""
    from kubernetes import client, config  # the library is large: imported only here

    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration, persist_config=False)
    except Exception as exc:  # noqa: BLE001  (config, file and YAML errors of many types)
        raise K3sdaasError(f"the master's kubeconfig {kubeconfig!r} cannot be used: {exc.__class__.__name__}",
                           field="kubeconfig") from None
    url = urlsplit(configuration.host)
    host = url.hostname or "127.0.0.1"

    def copied(source: str | None, name: str) -> str | None:
        if not source:
            return None
        target = directory / name
        shutil.copyfile(source, target)
        target.chmod(0o600)
        return str(target)

    try:
        ip_address(host)
        # nginx checks DNS names only, never IP SANs; every API server certificate carries DNS:kubernetes
        ssl_name = "kubernetes"
    except ValueError:
        ssl_name = host
    return KubeUpstream(host, url.port or 443, ssl_name,
                        copied(configuration.ssl_ca_cert, "kube-ca.pem") if configuration.verify_ssl else None,
                        copied(configuration.cert_file, "kube-client.pem"),
                        copied(configuration.key_file, "kube-client.key"),
                        configuration.get_api_key_with_prefix("BearerToken") or "")


def kube_locations(upstream: KubeUpstream | None, problem: str) -> tuple[str, str]:
    """(the ``upstream`` block, kube.conf: what each Kubernetes API location does)."""
    kube_codes = {raised for raised, _, _ in KUBE_ERRORS}
    pages = error_pages(tuple(e for e in ERRORS if e[0] not in kube_codes), "k3s")[0] + \
        error_pages(KUBE_ERRORS, "k3s_kube")[0]  # for one code nginx takes the first error_page: no duplicates
    if upstream is None:
        body = json.dumps(status(502, problem), separators=(",", ":"))
        return "", "\n".join([*pages, f"return 502 {quoted(body)};"]) + "\n"
    host = f"[{upstream.host}]" if ":" in upstream.host else upstream.host
    tls = [f"proxy_ssl_name {upstream.ssl_name};", "proxy_ssl_server_name on;", "proxy_ssl_session_reuse on;",
           "proxy_ssl_protocols TLSv1.2 TLSv1.3;"]
    if upstream.ca_file:
        tls += ["proxy_ssl_verify on;", "proxy_ssl_verify_depth 4;",
                f"proxy_ssl_trusted_certificate {upstream.ca_file};"]
    if upstream.cert_file and upstream.key_file:
        tls += [f"proxy_ssl_certificate {upstream.cert_file};", f"proxy_ssl_certificate_key {upstream.key_file};"]
    if "$" in upstream.authorization or "\n" in upstream.authorization:
        raise K3sdaasError("the master's kubeconfig token has characters nginx cannot carry ($ or a line break)",
                           field="kubeconfig")
    lines = [
        "auth_request /_authz;",
        *(f"auth_request_set $k3s_{name} $upstream_http_x_k3sdaas_{name};"
          for name in ("user", "group", "tier", "code", "status")),
        "auth_request_set $k3s_retry $upstream_http_retry_after;",
        "auth_request_set $k3s_cache $upstream_cache_status;",
        *pages,
        "error_page 401 403 = @k3s_refused;",
        # every client identity header, by prefix (Impersonate-User/-Group/-Uid/-Extra-*, X-Remote-*)
        "more_clear_input_headers 'Impersonate-*' 'X-Remote-*';",
        "proxy_pass https://k3s_kube$k3s_path;",
        "proxy_http_version 1.1;",
        f"proxy_set_header Host {host}:{upstream.port};",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $k3s_connection;",
        f"proxy_set_header Authorization {quoted(upstream.authorization)};",
        "proxy_set_header Impersonate-User $k3s_user;",
        "proxy_set_header Impersonate-Group $k3s_group;",
        "proxy_buffering off;  # watch and logs stream",
        "proxy_request_buffering off;",
        "proxy_connect_timeout 5s;",
        "proxy_read_timeout 1h;",
        "proxy_send_timeout 1h;",
        *tls,
    ]
    return (f"  upstream k3s_kube {{ server {host}:{upstream.port}; keepalive 64; }}",
            "\n".join(lines) + "\n")


def render(config: NautilusConfig, tls: TlsFiles, directory: Path, upstream_block: str) -> str:
    """nginx.conf for the master: the template with this master's paths and settings."""
    listen = f"[{config.listen_address}]" if ":" in config.listen_address else config.listen_address
    user = ""
    if os.geteuid() == 0:  # nginx's workers run as the master does (they read its state directory)
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    pages, locations = error_pages(ERRORS, "k3s")
    _, kube_locations_text = error_pages(KUBE_ERRORS, "k3s_kube")
    values = {"HEADERS_MORE": str(HEADERS_MORE), "USER": user, "DIR": str(directory),
              "MAX_BODY": str(MAX_BODY_BYTES), "SOCKET": str(directory / "master.sock"), "UPSTREAM": upstream_block,
              "LISTEN": f"{listen}:{config.listen_port}", "CERT": str(tls.cert), "KEY": str(tls.key),
              "ERROR_PAGES": "\n".join(f"    {page}" for page in pages),
              "ERROR_LOCATIONS": f"{locations}\n{kube_locations_text}"}
    text = resources.files(__package__).joinpath("nginx.conf.tmpl").read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    return text


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: no orphaned nginx


class Front:
    """nginx as the master process's child: rendered, started, reloaded when the kubeconfig changes, stopped."""

    def __init__(self, config: NautilusConfig, tls: TlsFiles) -> None:
        self.config = config
        self.tls = tls
        self.directory = Path(config.state_dir) / "front"
        self.socket = self.directory / "master.sock"
        self.pipe = self.directory / "audit.pipe"
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._kubeconfig_stamp: tuple[int, int] | None = None
        self._pipe_fd = -1

    def start(self) -> None:
        binary = nginx_binary(self.config.nginx)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.pipe.exists() and not stat.S_ISFIFO(self.pipe.stat().st_mode):
            self.pipe.unlink()
        if not self.pipe.exists():
            os.mkfifo(self.pipe, 0o600)
        # Held open (read and write) for the master's life: nginx never blocks opening the FIFO nor loses lines
        # while the worker restarts; they wait in the pipe.
        self._pipe_fd = os.open(self.pipe, os.O_RDWR | os.O_NONBLOCK)
        fcntl.fcntl(self._pipe_fd, 1031, PIPE_BYTES)  # F_SETPIPE_SZ
        self._write_config()
        conf = self.directory / "nginx.conf"
        args = [binary, "-p", str(self.directory), "-e", str(self.directory / "error.log"), "-c", str(conf)]
        tested = subprocess.run([*args, "-t", "-q"], capture_output=True, text=True, check=False)
        if tested.returncode != 0:
            raise K3sdaasError(f"nginx ({binary}) refused {conf}: {tested.stderr.strip()[-500:]}", field="front")
        # started before the watch thread and granian's: the process has one thread here
        self.process = subprocess.Popen([*args, "-g", "daemon off;"], preexec_fn=_die_with_parent)  # noqa: PLW1509
        self._wait_listening(binary)
        threading.Thread(target=self._watch, name="front-watch", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # nginx's fast shutdown
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self._pipe_fd >= 0:
            os.close(self._pipe_fd)
            self._pipe_fd = -1

    def _write_config(self) -> None:
        kubeconfig = Path(self.config.kubeconfig)
        try:
            info = kubeconfig.stat()
            self._kubeconfig_stamp = (info.st_mtime_ns, info.st_size)
            upstream: KubeUpstream | None = load_upstream(str(kubeconfig), self.directory)
            problem = ""
        except FileNotFoundError:
            self._kubeconfig_stamp, upstream = None, None
            problem = f"the master's kubeconfig {str(kubeconfig)!r} does not exist yet (is the cluster up?)"
        except K3sdaasError as exc:
            upstream, problem = None, str(exc)
        if upstream is None:
            log.warning("Kubernetes API proxy answers 502 until the kubeconfig can be used: %s", problem)
        upstream_block, kube_conf = kube_locations(upstream, problem)
        fd = os.open(self.directory / "kube.conf", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the credential
        with os.fdopen(fd, "w") as out:
            out.write(kube_conf)
        (self.directory / "nginx.conf").write_text(render(self.config, self.tls, self.directory, upstream_block))

    def _wait_listening(self, binary: str) -> None:
        assert self.process is not None
        host = "127.0.0.1" if self.config.listen_address in ("0.0.0.0", "") else self.config.listen_address
        host = "::1" if host == "::" else host
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                errors = (self.directory / "error.log").read_text(errors="replace")[-800:]
                raise K3sdaasError(f"nginx ({binary}) exited with {self.process.returncode}: {errors.strip()}",
                                   field="front")
            try:
                socket.create_connection((host, self.config.listen_port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise K3sdaasError(f"nginx ({binary}) did not listen on port {self.config.listen_port} within 15 s",
                           field="front")

    def _watch(self) -> None:
        """Reload nginx when the kubeconfig appears or changes; stop the master if nginx dies."""
        while not self._stopping.wait(WATCH_INTERVAL):
            assert self.process is not None
            if self.process.poll() is not None:
                log.error("nginx exited with %s; stopping the master", self.process.returncode)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            try:
                info = Path(self.config.kubeconfig).stat()
                stamp: tuple[int, int] | None = (info.st_mtime_ns, info.st_size)
            except OSError:
                stamp = None
            if stamp != self._kubeconfig_stamp:
                self._write_config()
                self.process.send_signal(signal.SIGHUP)
                log.info("nginx reloaded for the kubeconfig %s", self.config.kubeconfig)


# ----- in the master's worker: the decision endpoint and the audit lines -------------------------------

class AccessLog(asyncio.Protocol):
    """nginx's audit lines from the FIFO: one audit record each; cache-admitted requests counted by the limiter."""

    def __init__(self, audit: Any, limiter: RateLimiter) -> None:
        self.audit = audit
        self.limiter = limiter
        self._partial = b""

    def data_received(self, data: bytes) -> None:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line:
                self.line(line)

    def line(self, raw: bytes) -> None:
        try:
            entry = json.loads(raw.decode("utf-8", "replace"))
            user, tier = entry["user"], entry["tier"]
            status_code, seconds = int(entry["status"]), float(entry["time"])
        except (ValueError, KeyError, TypeError):
            log.error("unreadable audit line from nginx: %r", raw[:300])
            return
        identity = user if user.startswith(("sui:", "invalid-session")) else "anonymous"
        if entry.get("cache") == "HIT" and identity.startswith("sui:"):
            self.limiter.hit(identity[4:])
        self.audit.record(identity, int(tier) if tier.isdigit() else 0, entry.get("method") or "-",
                          entry.get("path") or "", status_code, seconds, entry.get("id") or "")


def with_decision(app: ASGIApp, audit: Any, config: NautilusConfig, decision: Decision) -> ASGIApp:
    """The worker's app behind nginx: ``/_authz`` answered beside the master's app (not audited itself: nginx's
    line for the request is), and the FIFO read once the app has started."""
    pipe = Path(config.state_dir) / "front" / "audit.pipe"

    async def front_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/_authz":
            await decision(scope, receive, send)
            return
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        transport: list[asyncio.ReadTransport] = []

        async def lifespan_receive() -> Any:
            message = await receive()
            if message["type"] == "lifespan.shutdown" and transport:
                transport[0].close()
            return message

        async def lifespan_send(message: Any) -> None:
            if message["type"] == "lifespan.startup.complete":
                fd = os.open(pipe, os.O_RDWR | os.O_NONBLOCK)  # read-write: no EOF while nginx reloads
                reader, _ = await asyncio.get_running_loop().connect_read_pipe(
                    lambda: AccessLog(audit, decision.limiter), os.fdopen(fd, "rb", buffering=0))
                transport.append(reader)
            await send(message)

        await app(scope, lifespan_receive, lifespan_send)

    return front_app
