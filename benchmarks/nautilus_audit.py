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
* Anchoring: a private Sui node stand-in with a registered enclave key; the time of each
  ``anchor_audit_batch`` (chain clock read, signature, transaction) for batches of ``--batch-size``
  records, against one plain ``GetObject`` round trip to the same node.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import re
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


if __name__ == "__main__":
    main()
