"""What the audit log costs a request, and how long anchoring a batch on chain takes, with baselines from the same run.

Usage: .venv/bin/python benchmarks/nautilus_audit.py [--duration S] [--connections N] [--rounds N] [--batches N]
                                                      [--batch-size N]

* Throughput: the same app served by granian (one worker, plain HTTP on loopback) and loaded with Debian's
  ``wrk``: an authenticated JSON route checked by the master's own SessionIssuer and TokenStates (as
  /api/v1/security-context), with auditing off (the baseline) and on (``AuditRequests`` + ``AuditLog``:
  one record per request, a write + fsync per 0.2 s batch). Rounds
  alternate off/on so machine load hits both; medians are compared. Wall-clock throughput swings with the
  machine's load, so the server's CPU time per request (/proc, worker included) is measured too: its
  ratio is the throughput a saturated worker keeps. Target: on >= 0.95 of off.
* The proxy: the whole master (nginx front, ``/_authz`` decision, an upstream nginx serving a pods list) with the
  master's enclave key registered on chain, so batches are anchored while wrk loads ``/k8s/…/pods`` over TLS;
  rounds alternate nginx's audit line on (FIFO -> ``AccessLog`` -> hash chain -> anchors) and off (the rendered
  nginx.conf edited and reloaded for the benchmark only). Target: on >= 0.95 of off.
* Anchoring: a private Sui node stand-in with a registered enclave key; the time of each
  ``anchor_audit_batch`` (chain clock read, signature, transaction) for batches of ``--batch-size``
  records, against one plain ``GetObject`` round trip to the same node.

Measured 2026-12-01 (2 cores shared with four other engineers, load average 8-11; 8 s runs, 3 rounds):
  app (granian, plain HTTP): off 9,880-11,090 req/s, on 7,750-9,150; server CPU 70.1 us/request off, 87.3 on: a
  saturated worker keeps 0.80 of the baseline (target >= 0.95: missed).
  proxy (nginx front, TLS, anchoring on): audit off 4,057 / 5,528 / 5,250 req/s, on 4,185 / 4,326 / 3,085;
  medians 5,250 off, 4,185 on: ratio 0.80 (target >= 0.95: missed), though single rounds range 0.59-1.03 at this
  load. All 93,661 records written were hash-chained and anchored by the master's registered enclave key.
  What the audit line costs is CPU on the same two cores: nginx formats and writes the line (4 KiB buffered writes
  into the FIFO), the master's worker parses it, queues the record, serializes and hashes it (SHA-256), fsyncs
  every 0.2 s and signs and sends one transaction per 1,000 records.
  anchor_audit_batch (1,000 records): median 27.2 ms, max 73.4 ms, against a 2.4 ms GetObject round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.util
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
AUDIT_ENV = "K3SDAAS_BENCH_AUDIT_LOG"  # set: the served app audits into this file
TOKEN_ENV = "K3SDAAS_BENCH_TOKEN_KEY"


def app() -> Any:
    """Granian's factory in the server process: the route, and the audit middleware when AUDIT_ENV is set."""
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from k3sdaas.nautilus.audit import AuditLog, AuditRequests, master_identify
    from k3sdaas.nautilus.revocation import TokenStates
    from k3sdaas.nautilus.sessions import SessionIssuer

    issuer = SessionIssuer(ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(os.environ[TOKEN_ENV])),
                           "https://bench", 3600)
    states = TokenStates()

    def authenticate(header: str | None) -> tuple[Any, int]:
        session = issuer.verify((header or "")[7:])
        return session, states.effective_tier(session, 1)

    async def context(request: Any) -> JSONResponse:
        session, tier = authenticate(request.headers.get("authorization"))
        return JSONResponse({"address": session.address, "tier": tier, "token_id": session.token_id})

    served = Starlette(routes=[Route("/api/v1/security-context", context)])
    if os.environ.get(AUDIT_ENV):
        served.add_middleware(AuditRequests, audit=AuditLog(os.environ[AUDIT_ENV],
                                                            identify=master_identify(authenticate)))
    return served


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (granian's worker) so far, from /proc."""
    pids = [pid, *(int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    ticks = 0
    for each in pids:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(url: str, seconds: int, connections: int, header: str) -> tuple[float, float, int]:
    """(requests/s, P99 ms, requests) of one wrk run; any non-2xx answer aborts the benchmark."""
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", header, url],
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return rate, float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit], total


def serve(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--workers", "1",
                                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                                "nautilus_audit:app"],
                               env={**os.environ, **env, "PYTHONPATH": str(Path(__file__).parent)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import httpx

    deadline = time.time() + 120  # a loaded machine starts it slowly
    while time.time() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("granian did not start")


def throughput(args: argparse.Namespace, work: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    from k3sdaas.nautilus.sessions import SessionIssuer

    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
    session, _ = SessionIssuer(key, "https://bench", 3600).issue("0x" + "ab" * 32, 2, "0x" + "cd" * 32)
    header = f"Authorization: Bearer {session}"
    results: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}  # server CPU microseconds per request
    log = work / "audit.log"
    for round_ in range(args.rounds):
        for mode in ("off", "on"):
            import socket

            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            env = {TOKEN_ENV: raw, **({AUDIT_ENV: str(log)} if mode == "on" else {})}
            server = serve(port, env)
            try:
                wrk(f"http://127.0.0.1:{port}/api/v1/security-context", 2, args.connections, header)  # warm-up
                time.sleep(0.5)
                before = cpu_seconds(server.pid)
                rate, p99, total = wrk(f"http://127.0.0.1:{port}/api/v1/security-context", args.duration,
                                       args.connections, header)
                time.sleep(0.5)  # the audit writer's last flush
                cpu[mode].append((cpu_seconds(server.pid) - before) / total * 1e6)
                results[mode].append((rate, p99))
            finally:
                server.terminate()
                server.wait(20)
            print(f"  round {round_ + 1} audit {mode:3}: {results[mode][-1][0]:9.0f} req/s  "
                  f"P99 {results[mode][-1][1]:6.2f} ms  server CPU {cpu[mode][-1]:6.1f} us/request", flush=True)
    off = statistics.median(r for r, _ in results["off"])
    on = statistics.median(r for r, _ in results["on"])
    lines = log.read_bytes().count(b"\n")
    print(f"audit off (baseline): {off:9.0f} req/s   P99 {statistics.median(p for _, p in results['off']):6.2f} ms")
    print(f"audit on:             {on:9.0f} req/s   P99 {statistics.median(p for _, p in results['on']):6.2f} ms")
    cpu_off, cpu_on = statistics.median(cpu["off"]), statistics.median(cpu["on"])
    print(f"throughput ratio on/off: {on / off:.3f} (wall clock; as noisy as the machine's load)")
    print(f"server CPU per request: off {cpu_off:.1f} us, on {cpu_on:.1f} us: a saturated worker serves "
          f"{cpu_off / cpu_on:.3f} of the baseline (target >= 0.95); {lines} records written and hash-chained")


def testkit() -> ModuleType:
    """tests/audit's chain harness (a node trusting a simulated Nitro root, a registered enclave key)."""
    sys.path.insert(0, str(REPO / "tests"))
    spec = importlib.util.spec_from_file_location("audit_testkit", REPO / "tests" / "audit" / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def anchoring(args: argparse.Namespace, work: Path) -> None:
    from datetime import UTC, datetime

    from k3sdaas.chain import ChainClient
    from k3sdaas.nautilus.audit import AuditLog, ChainAnchor
    from k3sdaas_localnet.nitro.pki import SimulatedPki
    from k3sdaas_localnet.sui.testing import running_node

    kit = testkit()
    pki = SimulatedPki.generate(kit.INSTANCE, datetime.now(UTC))
    with running_node(work / "sui", nitro_root=pki.root.cert) as node:
        anchored = kit.deploy(node, pki)

        async def go() -> tuple[list[float], list[float]]:
            async with ChainClient(anchored.settings(), anchored.deployment) as client:
                async def connected() -> ChainClient:
                    return client

                chain_anchor = ChainAnchor(connected, anchored.enclave_key.sign)
                times: list[float] = []

                async def timed_anchor(root: bytes, first: int, last: int) -> str:
                    started = time.perf_counter()
                    digest = await chain_anchor(root, first, last)
                    times.append(time.perf_counter() - started)
                    return digest

                audit = AuditLog(work / "anchored.log", timed_anchor, batch_size=args.batch_size, anchor_interval=3600,
                                 flush_interval=0.05)
                await audit.start()
                for i in range(args.batches * args.batch_size):
                    audit.record("sui:0x" + "ab" * 32, 2, "GET", f"/api/v1/namespaces/default/pods/p{i}", 200, 0.001,
                                 f"r{i}")
                while audit.anchored_seq < args.batches * args.batch_size:  # noqa: ASYNC110 (polls a counter)
                    await asyncio.sleep(0.02)
                await audit.stop()
                baseline = []
                for _ in range(len(times)):
                    started = time.perf_counter()
                    await client.get_object(anchored.deployment.registry_id)
                    baseline.append(time.perf_counter() - started)
                return times, baseline

        times, baseline = asyncio.run(go())
    print(f"anchor_audit_batch, {args.batch_size} records per batch, {len(times)} batches: median "
          f"{statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms "
          f"(one transaction per batch = {args.batch_size} requests)")
    print(f"baseline GetObject round trip:                median {statistics.median(baseline) * 1000:.1f} ms")


def proxied(args: argparse.Namespace, work: Path) -> None:
    """The whole master: nginx front, decision, and the audit lines (FIFO -> hash chain -> batches anchored by the
    master's registered enclave key) on, against the same master with nginx's audit line turned off (the rendered
    nginx.conf edited and reloaded: a benchmark-only change, no setting turns auditing off)."""
    from k3sdaas.chain import ChainClient

    proxy_bench = sibling("nautilus_proxy")
    http_bench = sibling("nautilus_http")
    kit = http_bench.testkit()
    work.mkdir()
    for directory in (work.parent, work):
        directory.chmod(0o755)  # the upstream nginx's workers run as nobody
    server, pki = kit.simulated_nsm(str(work / "nsm.sock"))
    with server, kit.running_node(work / "sui-proxied", nitro_root=pki.root.cert) as node:
        operator = kit.new_signer()
        node.faucet(operator.address, 1000 * kit.SUI)
        chain = kit.Chain(node, operator, kit.publish(node, operator))
        upstream_nginx, upstream, ca = proxy_bench.start_nginx(work / "upstream", 5)
        kubeconfig = work / "upstream.kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "up",
            "clusters": [{"name": "up", "cluster": {"server": upstream, "certificate-authority": str(ca)}}],
            "users": [{"name": "m", "user": {"token": "bench"}}],
            "contexts": [{"name": "up", "context": {"cluster": "up", "user": "m"}}]}))
        state = work / "master"
        state.mkdir()
        key_file = state / "sui.key"
        key_file.write_text(chain.funded(100).keystring)  # the master's own Sui key pays for the anchors
        key_file.chmod(0o600)
        settings = kit.master_settings(chain, work, server.bound_address, state, logging={"level": "warning"},
                                       sui={"key_file": str(key_file)}, auth={"rate_limit": 1_000_000},
                                       k3s={"kubeconfig": str(kubeconfig)})
        master = kit.start_master(state, settings)
        try:
            document = base64.b64decode(master.client.post("/api/v1/attestation", json={"nonce": "ab" * 16})
                                        .json()["document"])

            async def register() -> None:
                async with ChainClient(chain.settings(operator), chain.deployment) as client:
                    await client.update_pcrs(*kit.IMAGE_PCRS)
                    await client.register_enclave(document)

            asyncio.run(register())
            owner, token = chain.stake(0.5)
            session = master.login(owner, token.token_id)
            url = master.url + "/k8s" + proxy_bench.PODS_PATH
            conf = state / "front" / "nginx.conf"
            audited = conf.read_text()
            unaudited = re.sub(r"access_log \S+audit\.pipe[^;]*;", "access_log off;", audited)
            results: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
            for round_ in range(args.rounds):
                for mode in ("on", "off"):
                    conf.write_text(audited if mode == "on" else unaudited)
                    os.kill(int((state / "front" / "nginx.pid").read_text()), signal.SIGHUP)
                    time.sleep(1.5)  # the old workers finish, the new ones take over
                    rate, p99, _ = wrk(url, args.duration, args.connections, f"Authorization: Bearer {session}")
                    results[mode].append((rate, p99))
                    print(f"  round {round_ + 1} audit {mode:3}: {rate:9.0f} req/s  P99 {p99:6.2f} ms", flush=True)
            conf.write_text(audited)
            time.sleep(12)  # one more anchor interval (10 s)
            log = state / "audit.log"
            lines = log.read_bytes().count(b"\n")
            anchored = json.loads(log.with_name("audit.log.anchored").read_text())["next_seq"]
        finally:
            master.stop()
            upstream_nginx.terminate()
            upstream_nginx.wait(10)
    on, off = (statistics.median(r for r, _ in results[m]) for m in ("on", "off"))
    p99_on, p99_off = (statistics.median(p for _, p in results[m]) for m in ("on", "off"))
    print(f"proxied, audit off: {off:9.0f} req/s   P99 {p99_off:6.2f} ms")
    print(f"proxied, audit on:  {on:9.0f} req/s   P99 {p99_on:6.2f} ms   ratio on/off {on / off:.3f} "
          f"(target >= 0.95); {lines} records hash-chained, {anchored} anchored by the master on chain")


def sibling(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds of each wrk run (default 8)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    parser.add_argument("--rounds", type=int, default=3, help="off/on rounds (default 3)")
    parser.add_argument("--batches", type=int, default=10, help="batches anchored (default 10)")
    parser.add_argument("--batch-size", type=int, default=1000, help="records per batch (default 1000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as directory:
        work = Path(directory)
        print("throughput (granian, plain HTTP, wrk):", flush=True)
        throughput(args, work)
        anchoring(args, work)
        print("the Kubernetes API proxy (nginx front + decision, TLS, wrk), anchoring on:", flush=True)
        proxied(args, work / "proxied")


if __name__ == "__main__":
    main()
