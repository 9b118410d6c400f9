"""1,000 registered workers heartbeating every 10 s: the master's memory and heartbeat latency.

Usage: .venv/bin/python benchmarks/nautilus_heartbeat.py [--nodes 1000] [--interval 10] [--seconds 60]

Starts a Sui node stand-in, the Kubernetes stand-in and the master in a temporary directory, stakes one
token per node, registers every node (seal proof, bootstrap join token), then lets each node send a
heartbeat every ``interval`` seconds (random phase, 100 pooled TLS connections) for ``seconds``.
Prints heartbeat latency (targets: P99 <= 20 ms) and the master's RSS (target <= 300 MB), against the
same schedule sent to GET /health and the RSS of the idle master before any node registered.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from k3sdaas.chain import ChainClient, SealToken, Signer
from k3sdaas_localnet.sui.testing import running_node

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nautilus_http import testkit


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (granian runs the app in a worker process)."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
        pids += [int(child) for child in children]
    return total / 1024


async def schedule(url: str, cert: Path, sessions: list[str], path: str, interval: float, seconds: float,
                   body: dict[str, object] | None, connections: int = 100) -> list[float]:
    """Each session sends one request every ``interval`` s for ``seconds``; ``connections`` workers share
    the sessions (never more requests in flight than connections, so no queueing inside the client)."""
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, verify=ssl.create_default_context(cafile=cert), limits=limits,
                                 timeout=30) as client:
        end = time.monotonic() + seconds

        async def worker(mine: list[str]) -> None:
            nonlocal failures
            gap = interval / max(1, len(mine))
            await asyncio.sleep(random.uniform(0, gap))
            while time.monotonic() < end:
                for session in mine:
                    started = time.perf_counter()
                    headers = {"Authorization": f"Bearer {session}"}
                    response = await (client.post(path, json=body, headers=headers) if body is not None
                                      else client.get(path, headers=headers))
                    latencies.append(time.perf_counter() - started)
                    failures += response.status_code != 200
                    await asyncio.sleep(max(0.0, gap - (time.perf_counter() - started)))

        workers = min(connections, len(sessions))
        await asyncio.gather(*(worker(sessions[i::workers]) for i in range(workers)))
    if failures:
        print(f"  {failures} requests failed")
    return latencies


def server_p99(metrics: str, route: str) -> str:
    """The bucket holding the 99th percentile of the master's own latency histogram for ``route``."""
    buckets = sorted((float(s.labels["le"]), s.value) for family in text_string_to_metric_families(metrics)
                     for s in family.samples
                     if s.name == "nautilus_http_request_seconds_bucket" and s.labels.get("route") == route)
    total = buckets[-1][1] if buckets else 0
    bound = next((le for le, count in buckets if count >= 0.99 * total), float("inf"))
    return f"server-side p99 <= {bound * 1000:g} ms over {total:.0f} requests"


async def stake_all(chain: object, count: int) -> list[tuple[Signer, SealToken]]:
    """One 0.5 SUI token per node, each owned by a fresh key, through one client (one pysui function cache)."""
    kit = sys.modules["nautilus_testkit"]
    owners = [kit.new_signer() for _ in range(count)]
    async with ChainClient(chain.settings(chain.operator), chain.deployment) as client:  # type: ignore[attr-defined]
        return [(owner, await client.stake(f"bench-{number:05d}", kit.SUI // 2, owner=owner.address))
                for number, owner in enumerate(owners)]


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{len(samples):6d} requests   median {statistics.median(samples) * 1000:7.2f} ms   p99 {p99 * 1000:7.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    kit = testkit()
    with tempfile.TemporaryDirectory(prefix="nautilus-hb-") as tmp, running_node(Path(tmp) / "sui") as node:
        root = Path(tmp)
        operator = kit.new_signer()
        node.faucet(operator.address, 10_000_000 * kit.SUI)
        chain = kit.Chain(node, operator, kit.publish(node, operator))
        (root / "kube").mkdir()
        kube = kit.start_kube(root / "kube")
        nsm, _ = kit.simulated_nsm(str(root / "nsm.sock"))
        with nsm:
            state = root / "master"
            master = kit.start_master(state, kit.master_settings(
                chain, root / "kube", nsm.bound_address, state, logging={"level": "warning"},
                nodes={"heartbeat_grace": args.interval * 3}, sui={"poll_interval": 1.0}))
            try:
                idle = rss_mb(master.process.pid)
                started = time.time()
                sessions = []
                for number, (owner, token) in enumerate(asyncio.run(stake_all(chain, args.nodes))):
                    body = {**master.proof(owner, token.token_id), "node_id": token.node_id,
                            "ip": f"10.{number // 65536}.{number // 256 % 256}.{number % 256}"}
                    response = master.client.post("/api/v1/register-worker", json=body)
                    assert response.status_code == 200, response.text
                    sessions.append(response.json()["session"])
                print(f"registered {args.nodes} nodes in {time.time() - started:.0f} s; master RSS idle {idle:.0f} MB, "
                      f"after registration {rss_mb(master.process.pid):.0f} MB")
                beats = asyncio.run(schedule(master.url, master.cert, sessions, "/api/v1/nodes/heartbeat",
                                             args.interval, args.seconds, {"metrics": {"cpu_percent": 10.0}}))
                peak = rss_mb(master.process.pid)
                health = asyncio.run(schedule(master.url, master.cert, sessions, "/health", args.interval,
                                              min(args.seconds, 30.0), None))
                print(f"heartbeats ({args.nodes} nodes / {args.interval:g} s)  {summary(beats)}   "
                      f"target p99 <= 20 ms")
                print(f"  {server_p99(master.get('/metrics').text, '/api/v1/nodes/heartbeat')}; GET /health: "
                      f"{server_p99(master.get('/metrics').text, '/health')}")
                print(f"baseline GET /health, same schedule  {summary(health)}")
                print(f"master RSS with {args.nodes} nodes heartbeating: {peak:.0f} MB (target <= 300 MB; "
                      f"idle baseline {idle:.0f} MB)")
            finally:
                master.stop()
                kube.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
