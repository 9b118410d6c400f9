"""``k3sdaas-localnet sui …``: run the node, fund an address, or move the chain clock.

``main(argv)`` receives the arguments after ``sui`` (the ``k3sdaas-localnet`` dispatcher strips it)::

    k3sdaas-localnet sui --state DIR [--port 9000] [--host 127.0.0.1] [--nitro-root PEM] [--faucet-port P]
    k3sdaas-localnet sui --state DIR faucet 0xADDRESS [--amount MIST]
    k3sdaas-localnet sui --state DIR advance-clock MS
    k3sdaas-localnet sui --state DIR operator --key-file F --build-output F --sources DIR
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from k3sdaas.attestation import load_root

from .faucet import DEFAULT_AMOUNT, fund_address
from .ledger import advance_clock
from .node import NodeInfo, run
from .operator import prepare_operator


def _parser() -> argparse.ArgumentParser:
    sui = argparse.ArgumentParser(prog="k3sdaas-localnet sui",
                                  description="local Sui full node (gRPC over TLS) for pysui clients")
    sui.add_argument("--state", type=Path, required=True, help="state directory (SQLite chain, TLS certificates)")
    sui.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    sui.add_argument("--port", type=int, default=9000, help="listen port (0 picks a free one; default 9000)")
    sui.add_argument("--nitro-root", type=Path, help="PEM root for Nitro attestation documents (default: AWS root)")
    sui.add_argument("--tls-san", action="append", default=[],
                     help="extra name or IP for the serving certificate (an address other hosts dial)")
    sui.add_argument("--faucet-port", type=int, help="also serve a Sui-style HTTP faucet (POST /v2/gas) on this port")
    actions = sui.add_subparsers(dest="action")
    faucet = actions.add_parser("faucet", help="mint a Coin<SUI> to an address")
    faucet.add_argument("address")
    faucet.add_argument("--amount", type=int, default=DEFAULT_AMOUNT, help="MIST (default 1000 SUI)")
    clock = actions.add_parser("advance-clock", help="move the chain clock forward")
    clock.add_argument("ms", type=int)
    operator = actions.add_parser("operator", help="create and fund the local operator key, write the package build")
    operator.add_argument("--key-file", type=Path, required=True, help="created (0600) and funded when missing")
    operator.add_argument("--build-output", type=Path, required=True, help="the package build for sui_publish")
    operator.add_argument("--sources", type=Path, required=True, help="the Move package's sources directory")
    return sui


def _serve(args: argparse.Namespace) -> int:
    root = load_root(args.nitro_root) if args.nitro_root else None  # None: the AWS Nitro root

    async def main() -> None:
        started: asyncio.Future[NodeInfo] = asyncio.get_running_loop().create_future()
        server = asyncio.create_task(run(args.state, args.host, args.port, root, args.faucet_port, started,
                                         args.tls_san))
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, server.cancel)
        # A node that cannot start (port taken, say) must exit with its error, not wait forever.
        await asyncio.wait({started, server}, return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            server.result()
        info = started.result()
        print(f"k3sdaas-localnet sui listening on {info.url}", flush=True)
        print(f"CA certificate: {info.ca_path}", flush=True)
        if info.faucet_url:
            print(f"faucet: {info.faucet_url}", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await server

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
    except OSError as exc:
        print(f"k3sdaas-localnet sui: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.action == "faucet":
            print(fund_address(args.state, args.address, args.amount))
        elif args.action == "advance-clock":
            print(advance_clock(args.state, args.ms))
        elif args.action == "operator":
            report = prepare_operator(args.state, args.key_file, args.build_output, args.sources)
            print(f"operator {report.address}: key {'created and funded' if report.key_created else 'up to date'}, "
                  f"build {'written' if report.build_written else 'up to date'}")
        else:
            return _serve(args)
    except ValueError as exc:
        parser.error(f"{args.action}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
