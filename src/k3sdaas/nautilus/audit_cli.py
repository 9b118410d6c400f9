"""``k3sdaas-nautilus audit verify LOG | prove SEQ --log LOG | check-proof PROOF``.

Each reads the ``AuditBatchAnchored`` events of the deployment from the chain (settings as for
``serve``: ``--config`` file, environment such as ``SUI_RPC_URL``/``K3SDAAS_PACKAGE_ID``, or the
options below), so anyone with read access to the chain can check a log or a proof. Success prints
one line (``prove``: the proof JSON) and exits 0; a failure exits 1 with one line naming the cause.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from .audit import Anchor, AuditError, check_proof, prove, read_anchors, verify_log
from .config import load_config

MAX_PROOF_BYTES = 64 * 1024


def add_parser(commands: Any) -> None:
    audit = commands.add_parser("audit", help="check the audit log and its on-chain anchors")
    verbs = audit.add_subparsers(dest="audit_command", required=True)
    verify = verbs.add_parser("verify", help="check LOG against its anchors; name the first bad or missing line")
    verify.add_argument("log")
    proof = verbs.add_parser("prove", help="print the Merkle inclusion proof (JSON) of one record")
    proof.add_argument("seq", type=int)
    proof.add_argument("--log", required=True)
    check = verbs.add_parser("check-proof", help="check a proof from `audit prove` (a file, or - for stdin)")
    check.add_argument("proof")
    for parser in (verify, proof, check):
        parser.add_argument("--config", help="the master's YAML settings (its sui section is used)")
        parser.add_argument("--rpc-url", dest="rpc_url", help="Sui gRPC URL (default $SUI_RPC_URL)")
        parser.add_argument("--ca-file", dest="sui_ca_file", help="CA of the Sui node's TLS (default $SUI_CA_FILE)")
        parser.add_argument("--package-id", dest="package_id", help="k3s_daas package id ($K3SDAAS_PACKAGE_ID)")


async def anchors(args: argparse.Namespace) -> list[Anchor]:
    from .service import ChainAccess

    config = load_config(args.config, rpc_url=args.rpc_url, sui_ca_file=args.sui_ca_file, package_id=args.package_id)
    chain = ChainAccess(config)
    try:
        return await read_anchors(await chain.client())
    finally:
        await chain.close()


def _read_proof(source: str) -> Any:
    try:
        if source == "-":
            text = sys.stdin.read(MAX_PROOF_BYTES + 1)
        else:
            with open(source, encoding="utf-8") as proof_file:
                text = proof_file.read(MAX_PROOF_BYTES + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError(f"proof {source!r} cannot be read: {exc.__class__.__name__}") from None
    if len(text) > MAX_PROOF_BYTES:
        raise AuditError(f"proof {source!r} is larger than {MAX_PROOF_BYTES} bytes")
    try:
        return json.loads(text)
    except ValueError:
        raise AuditError(f"proof {source!r} is not JSON") from None


def run(args: argparse.Namespace) -> int:
    if args.audit_command == "check-proof":
        proof_ = _read_proof(args.proof)
        print(check_proof(proof_, asyncio.run(anchors(args))))
    elif args.audit_command == "prove":
        print(json.dumps(prove(args.log, args.seq, asyncio.run(anchors(args))), indent=2))
    else:
        print(verify_log(args.log, asyncio.run(anchors(args))))
    return 0
