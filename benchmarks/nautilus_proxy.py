"""The master's Kubernetes API proxy (nginx + the master's decision) against the same upstream reached directly.

Usage: .venv/bin/python benchmarks/nautilus_proxy.py [--duration S] [--connections N] [--pods N] [--rounds N]

Starts nginx (Debian's) as a fast static upstream serving a pods list JSON over TLS 1.3 at
``/api/v1/namespaces/default/pods`` (one worker), a Sui node stand-in, a simulated NSM and the master
(nginx front on the master port, TLS 1.3, ``auth_request`` to granian on a Unix socket) whose kubeconfig points
at the upstream, then loads with wrk (N connections, TLS), direct and proxied rounds alternating (medians):
  * direct:   GET https://upstream/api/v1/namespaces/default/pods
  * proxied:  GET https://master/k8s/api/v1/namespaces/default/pods with a session (decision: session, rate
              limit, tier verbs; cached by nginx for <= 2 s per session, method and path; identity headers
              cleared and set; one audit line per request through the FIFO into the hash-chained log)
and one request at a time (httpx, keep-alive) for the unloaded latency.
Targets (issue 11): proxied >= 0.60 of direct throughput, P99 added <= 5 ms.

Also "bare": the same nginx front with the decision and the audit line edited out of its rendered config (for
the benchmark only): the ceiling of any nginx data path on this machine.

Measured 2026-12-01 on the 2 cores of the build machine shared with four other engineers (load average 6.6-10.6
during the runs; front nginx 2 workers, upstream nginx 1 worker):
  run 1: direct 11,454 req/s (median of 3), proxied 2,253 req/s: ratio 0.20; P99 41.5 ms direct, 216 ms proxied.
  run 2: direct 11,749 req/s, proxied 3,576 req/s (ratio 0.30), bare nginx proxy 4,256 req/s (0.36);
         P99 40.2 ms direct, 178 ms proxied (added 138 ms: queueing at saturation).
  variants alternated on one master (8 s each): shipped 3,300-5,900 req/s, audit line off 4,650-5,250, nginx
  cache off (every request decided by the master) 4,670-5,340, bare 6,590-7,460, direct 11,400-14,800 req/s.
  one request at a time (httpx, keep-alive): median 0.84 ms proxied against 0.65-2.2 ms direct (noise at this
  load); P99 3-20 ms for both.
The targets are still missed: ratio 0.20-0.40 against >= 0.60 (33-51 % of the target), P99 added at saturation
~140-175 ms against <= 5 ms. What limits it is CPU, not Python: under wrk the master's worker used ~8 % of a core
(decisions and audit lines), the front's two nginx workers ~45 % and the upstream ~19 % for 5,300 req/s, i.e.
~85 us of front nginx CPU a request (TLS in, TLS again to the API server, proxying) against ~35 us for the
upstream serving the file. With two TLS hops through nginx the bare front already stops at ~0.36-0.5 of direct on
two shared cores; the decision and the audit line cost the rest (~15-25 %). Not measured here: a host where the
front has cores of its own (wrk, the upstream and other jobs share these two), e.g. the enclave's parent with K3s
on 6444.

The earlier pure-Python data path (granian + aiohttp relay) measured 650-850 req/s proxied against 7,500-13,700
direct (ratio 0.06-0.11, P99 added ~0.5 s at load average 11-20): ~1 ms of Python CPU per request.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import yaml

from k3sdaas.nautilus.identity import make_tls
from k3sdaas_localnet.sui.testing import running_node

REPO = Path(__file__).resolve().parents[1]
PODS_PATH = "/api/v1/namespaces/default/pods"


def sibling(name: str) -> ModuleType:
    """benchmarks/nautilus_http.py (its wrk runner and the tests' master harness), reused rather than copied."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pods_list(count: int) -> dict[str, object]:
    def pod(i: int) -> dict[str, object]:
        return {"metadata": {"name": f"web-{i}", "namespace": "default", "uid": f"00000000-0000-0000-0000-{i:012d}",
                             "resourceVersion": str(100 + i), "creationTimestamp": "2026-12-01T09:00:00Z",
                             "labels": {"app": "web", "pod-template-hash": "5d8f7c9b6"}},
                "spec": {"nodeName": "node-a", "containers": [{"name": "main", "image": "nginx:1.27",
                                                               "ports": [{"containerPort": 80}]}]},
                "status": {"phase": "Running", "podIP": f"10.42.0.{i % 250 + 2}",
                           "conditions": [{"type": "Ready", "status": "True"}]}}

    return {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "200"},
            "items": [pod(i) for i in range(count)]}


def start_nginx(directory: Path, pods: int) -> tuple[subprocess.Popen[bytes], str, Path]:
    """nginx on a free port, one worker, TLS 1.3, serving the pods list; (process, URL, CA file)."""
    directory.mkdir(mode=0o755)
    tls = make_tls(directory / "tls", ["127.0.0.1", "kubernetes"])  # nginx checks DNS names, not IP SANs
    body = directory / "pods.json"
    body.write_text(json.dumps(pods_list(pods)))
    body.chmod(0o644)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    temp = "\n".join(f"  {kind}_temp_path {directory}/{kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (directory / "nginx.conf").write_text(f"""
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
{temp}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {tls.cert};
    ssl_certificate_key {tls.key};
    ssl_protocols TLSv1.3;
    location = {PODS_PATH} {{ default_type application/json; alias {body}; }}
  }}
}}
""")
    process = subprocess.Popen(["nginx", "-p", str(directory), "-c", str(directory / "nginx.conf"), "-g",
                                "daemon off;"], stderr=subprocess.PIPE)
    url = f"https://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(url + PODS_PATH, verify=False, timeout=1).status_code == 200:
                return process, url, tls.cert
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"nginx did not start: {process.stderr.read().decode() if process.stderr else ''}")


@contextlib.contextmanager
def bare_front(front: Path) -> Iterator[None]:
    """The master's nginx without the decision and the audit line (the rendered files edited, reloaded, restored):
    the ceiling of the design on this machine. A benchmark-only change; no setting does this."""
    conf, kube = front / "nginx.conf", front / "kube.conf"
    shipped = conf.read_text(), kube.read_text()
    conf.write_text(re.sub(r"access_log \S+audit\.pipe[^;]*;", "access_log off;", shipped[0]))
    kube.write_text(shipped[1].replace("auth_request /_authz;", ""))

    def reload() -> None:
        os.kill(int((front / "nginx.pid").read_text()), signal.SIGHUP)

    reload()
    time.sleep(1.5)  # the old workers finish, the new ones take over
    try:
        yield
    finally:
        conf.write_text(shipped[0])
        kube.write_text(shipped[1])
        reload()
        time.sleep(1.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--pods", type=int, default=5, help="pods in the list (default 5, ~2.8 kB)")
    parser.add_argument("--rounds", type=int, default=3, help="direct/proxied pairs of wrk runs (default 3)")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            print(f"nautilus_proxy: {tool} is not installed (apt-get install {tool})", file=sys.stderr)
            return 1
    http_bench = sibling("nautilus_http")
    kit = http_bench.testkit()
    with tempfile.TemporaryDirectory(prefix="nautilus-proxy-bench-") as tmp, running_node(Path(tmp) / "sui") as node:
        Path(tmp).chmod(0o755)  # the upstream nginx's workers run as nobody
        nginx, upstream, ca = start_nginx(Path(tmp) / "nginx", args.pods)
        kubeconfig = Path(tmp) / "upstream.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "nginx",
            "clusters": [{"name": "nginx", "cluster": {"server": upstream, "certificate-authority": str(ca)}}],
            "users": [{"name": "nautilus", "user": {"token": "bench"}}],
            "contexts": [{"name": "nginx", "context": {"cluster": "nginx", "user": "nautilus"}}]}))
        operator = kit.new_signer()
        node.faucet(operator.address, 10_000 * kit.SUI)
        chain = kit.Chain(node, operator, kit.publish(node, operator))
        nsm, _ = kit.simulated_nsm(str(Path(tmp) / "nsm.sock"))
        with nsm:
            state = Path(tmp) / "master"
            # a limit high enough that nginx may cache admissions (proxy.CACHE_HEADROOM) for every run
            settings = kit.master_settings(chain, Path(tmp), nsm.bound_address, state, logging={"level": "warning"},
                                           auth={"rate_limit": 1_000_000}, k3s={"kubeconfig": str(kubeconfig)})
            master = kit.start_master(state, settings)
            try:
                owner, token = chain.stake(0.5)
                session = master.login(owner, token.token_id)
                header = f"Authorization: Bearer {session}"
                proxied_url = master.url + "/k8s" + PODS_PATH
                assert master.get("/k8s" + PODS_PATH, session).json()["kind"] == "PodList"
                size = len(json.dumps(pods_list(args.pods)))
                print(f"upstream nginx {upstream} (1 worker, TLS 1.3), master {master.url} (nginx front, "
                      f"{os.cpu_count()} workers, TLS 1.3; granian 1 worker); body {size} B; wrk {args.connections} "
                      f"connections, {args.duration} s per run, {args.rounds} rounds; load average "
                      f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
                runs: dict[str, list[tuple[float, float, str]]] = {"direct": [], "proxied": [], "bare": []}
                for _ in range(args.rounds):
                    runs["direct"].append(http_bench.wrk(upstream + PODS_PATH, args.duration, args.connections))
                    runs["proxied"].append(http_bench.wrk(proxied_url, args.duration, args.connections, header))
                    with bare_front(state / "front"):
                        runs["bare"].append(http_bench.wrk(proxied_url, args.duration, args.connections, header))
                for name, results in runs.items():
                    print(f"{name:8} GET {PODS_PATH}  " + "  ".join(f"{rate:7.0f} req/s P99 {p99:6.2f} ms"
                                                                for rate, p99, _ in results)
                          + f"  errors: {sorted({errors for _, _, errors in results})}")
                rate, p99 = (statistics.median(r[i] for r in runs["direct"]) for i in (0, 1))
                p_rate, p_p99 = (statistics.median(r[i] for r in runs["proxied"]) for i in (0, 1))
                ratio, added = p_rate / rate, p_p99 - p99
                b_rate = statistics.median(r[0] for r in runs["bare"])
                print(f"median: direct {rate:.0f} req/s P99 {p99:.2f} ms, "
                      f"proxied {p_rate:.0f} req/s P99 {p_p99:.2f} ms; bare nginx proxy {b_rate:.0f} req/s "
                      f"({b_rate / rate:.3f} of direct: what two TLS hops through nginx alone leave here)")
                print(f"ratio proxied/direct {ratio:.3f} (target >= 0.60: "
                      f"{'met' if ratio >= 0.60 else f'missed, {ratio / 0.60:.0%} of the target'}); "
                      f"P99 added {added:.2f} ms (target <= 5 ms: {'met' if added <= 5 else 'missed'}); load average "
                      f"now {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
                with httpx.Client(verify=str(ca)) as direct_client:
                    direct = http_bench.timed(lambda: direct_client.get(upstream + PODS_PATH), 300)
                proxied = http_bench.timed(lambda: master.get("/k8s" + PODS_PATH, session), 300)
                print(f"one at a time (httpx, keep-alive, 300 each): direct {http_bench.ms(direct)}; "
                      f"proxied {http_bench.ms(proxied)}")
            finally:
                master.stop()
                nginx.terminate()
                nginx.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
