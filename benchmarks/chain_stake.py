"""Stake throughput and SealToken look-up latency of k3sdaas.chain against the local Sui node stand-in.

Usage: .venv/bin/python benchmarks/chain_stake.py [--stakes N] [--lookups N] [--pool-sizes 10,100,1000]

Starts a stand-in node in a temporary directory, publishes k3s_daas, then measures, in one run:
  * stake transactions per second (sequential, one signer) against the same pipeline sending a plain
    SUI transfer (the baseline: what the node and pysui cost without the Move call);
  * token look-up latency as the pool grows to each of ``--pool-sizes`` stakes, by both paths:
    the old one (replaying the pool's ``staking`` events into an index, then reading the clock) and
    the new one (``get_token``: the record's dynamic-field object, at its derived id, and the clock).
    Cold is a new client (connect included), warm a client that already looked up once;
  * cached (``max_age``) look-ups, against one raw GetObject round trip (baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_crypto import create_new_keypair

from k3sdaas.chain import ChainClient, ChainSettings, Deployment, Signer, dump_build_output, load_build_output
from k3sdaas.chain.keys import signer_from_text
from k3sdaas_localnet.sui.publish import module_markers
from k3sdaas_localnet.sui.testing import running_node

MOVE_SOURCES = Path(__file__).resolve().parents[1] / "move" / "sources"

SUI = 1_000_000_000


async def timed(operation: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    """Wall-clock seconds of each of ``runs`` sequential calls."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await operation()
        samples.append(time.perf_counter() - started)
    return samples


def ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(samples) * 1000:8.3f} ms   p95 {p95 * 1000:8.3f} ms"


async def old_lookup(client: ChainClient, token_id: str) -> int:
    """The look-up as it was: bring the event index up to date, take the record, read the clock."""
    record = (await client.sync()).records[token_id]
    await client.chain_time_ms()
    return record.amount


async def grow_and_compare(settings: ChainSettings, deployment: Deployment, pool_sizes: list[int],
                           lookups: int) -> None:
    """Stake until the pool holds each size, then time both look-up paths, cold and warm."""
    async with ChainClient(settings, deployment) as client:
        token_id = (await client.stake("lookup-0", SUI)).token_id
        staked = 1
        print(f"{'pool':>6}  {'old cold':>12} {'new cold':>12}   {'old warm':>12} {'new warm':>12}  (median ms)")
        for size in pool_sizes:
            while staked < size:
                await client.stake(f"lookup-{staked}", SUI)
                staked += 1

            async def cold_old() -> None:
                async with ChainClient(settings, deployment) as fresh:
                    await old_lookup(fresh, token_id)

            async def cold_new() -> None:
                async with ChainClient(settings, deployment) as fresh:
                    await fresh.get_token(token_id)

            runs = max(3, lookups // 10)
            figures = [statistics.median(await timed(op, runs)) for op in (cold_old, cold_new)]
            await old_lookup(client, token_id)
            await client.get_token(token_id)
            figures += [statistics.median(await timed(op, lookups)) for op in
                        (lambda: old_lookup(client, token_id), lambda: client.get_token(token_id))]
            print(f"{size:>6}  " + "  ".join(f"{f * 1000:12.2f}" for f in figures[:2]) + "   "
                  + "  ".join(f"{f * 1000:12.2f}" for f in figures[2:]))


async def measure(settings: ChainSettings, deployment: Deployment, stakes: int, lookups: int) -> None:
    async with ChainClient(settings, deployment) as client:
        counter = iter(range(10**9))

        async def transfer() -> None:
            async def build(txn: object) -> None:
                coin = await txn.split_coin(coin=txn.gas, amounts=[1000])
                await txn.transfer_objects(transfers=[coin], recipient=client.address)

            await client.submit(await client.sign("transfer", build), "transfer")

        async def stake() -> None:
            await client.stake(f"bench-{next(counter)}", SUI)

        baseline_tx = await timed(transfer, stakes)
        stake_tx = await timed(stake, stakes)
        token_id = await client.token_for_node("bench-0")
        assert token_id

        async def raw_rpc() -> None:
            await client.get_object(token_id)

        async def cached() -> None:
            await client.get_token(token_id, max_age=60)

        baseline_rpc = await timed(raw_rpc, lookups)
        cached_lookup = await timed(cached, lookups)

    tps, base_tps = len(stake_tx) / sum(stake_tx), len(baseline_tx) / sum(baseline_tx)
    print(f"stake transactions      {tps:8.1f} tx/s   ({ms(stake_tx)})")
    print(f"baseline SUI transfers  {base_tps:8.1f} tx/s   ({ms(baseline_tx)})")
    print(f"stake / baseline        {tps / base_tps:8.2f}x")
    print(f"token look-up, cached   {ms(cached_lookup)}")
    print(f"baseline GetObject      {ms(baseline_rpc)}")


def new_signer() -> Signer:
    return signer_from_text(create_new_keypair(scheme=SignatureScheme.ED25519)[1].to_bech32())


async def publish(settings: ChainSettings, build_output: Path) -> Deployment:
    async with ChainClient(settings) as client:
        return await client.publish(*load_build_output(build_output))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stakes", type=int, default=40, help="stake transactions to send (default 40)")
    parser.add_argument("--lookups", type=int, default=100, help="look-ups per latency figure (default 100)")
    parser.add_argument("--pool-sizes", default="10,100,1000",
                        help="pool sizes at which to compare the look-up paths (default 10,100,1000)")
    args = parser.parse_args()
    try:
        pool_sizes = sorted({int(n) for n in args.pool_sizes.split(",")})
    except ValueError:
        parser.error(f"--pool-sizes must be comma-separated numbers, got {args.pool_sizes!r}")
    if not (0 < args.stakes <= 10_000 and 0 < args.lookups <= 10_000 and pool_sizes and pool_sizes[0] > 0
            and pool_sizes[-1] <= 10_000):
        parser.error("--stakes, --lookups and --pool-sizes must be between 1 and 10000")
    with tempfile.TemporaryDirectory(prefix="k3sdaas-bench-") as tmp, running_node(Path(tmp) / "node") as node:
        signer = new_signer()
        node.faucet(signer.address, 10 * args.stakes * SUI + 2 * pool_sizes[-1] * SUI + 1000 * SUI)
        settings = ChainSettings(rpc_url=node.url, signer=signer, ca_file=str(node.ca_path))
        build_output = Path(tmp) / "build.json"
        markers = module_markers("k3s_daas", MOVE_SOURCES, ["staking", "registry", "k8s_gateway"])
        build_output.write_text(dump_build_output(markers, ["0x1", "0x2"]))
        deployment = asyncio.run(publish(settings, build_output))
        print(f"k3sdaas.chain against the Sui stand-in at {node.url} ({args.stakes} stakes, {args.lookups} look-ups)")
        asyncio.run(measure(settings, deployment, args.stakes, args.lookups))
        print("token look-up by pool size: old = replay the pool's events, new = GetObject of the derived id")
        asyncio.run(grow_and_compare(settings, deployment, pool_sizes, args.lookups))
    return 0


if __name__ == "__main__":
    sys.exit(main())
