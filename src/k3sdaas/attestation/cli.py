"""k3sdaas-attest: verify a Nitro attestation document from the command line.

Exit 0 with a JSON summary on stdout; anything else, a bad argument included, exits 1 with one line on stderr.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import NoReturn

from k3sdaas.attestation.cose import COSE_SIGN1_TAG
from k3sdaas.attestation.errors import AttestationError
from k3sdaas.attestation.policy import PcrPolicy, parse_pcr_value
from k3sdaas.attestation.roots import load_root
from k3sdaas.attestation.verify import verify_attestation
from k3sdaas.errors import InvalidInput

CBOR_ARRAY4 = 0x84
CBOR_TAG18 = 0xC0 | COSE_SIGN1_TAG
# A document is about 4.5 KiB (5.3 KiB in base64) and a root certificate under 1 KiB; this is ample.
MAX_INPUT_BYTES = 64 * 1024


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors follow the command's contract: exit 1 with one line, no usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: error: {' '.join(message.split())}\n")


def _pcr(text: str) -> tuple[int, bytes]:
    index, sep, value = text.partition("=")
    if not sep or not index.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not N=HEX")
    try:
        return int(index), parse_pcr_value(int(index), value)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not hex") from None


def _time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone (use Z or +00:00)")
    return moment


def decode_document_input(data: bytes) -> bytes:
    """Raw COSE bytes are used as they are; anything else must be base64 (the form REST endpoints return)."""
    if data[:1] in (bytes([CBOR_ARRAY4]), bytes([CBOR_TAG18])):
        return data
    try:
        return base64.b64decode(b"".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("document is neither raw COSE_Sign1 bytes nor base64", field="document") from None


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="k3sdaas-attest", description="Verify AWS Nitro Enclaves attestation documents.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    verify = commands.add_parser("verify", help="verify one document")
    verify.add_argument("document", help="file with the raw or base64 document, or - for stdin")
    verify.add_argument("--root", help="PEM root to pin instead of AWS Nitro Root-G1")
    verify.add_argument("--at", type=_time, help="verification time, RFC 3339 (default: now)")
    verify.add_argument("--pcr", type=_pcr, action="append", default=[], metavar="N=HEX", help="expected PCR value")
    verify.add_argument("--nonce", type=_hex, help="expected nonce (hex)")
    verify.add_argument("--public-key", type=_hex, help="expected public_key (hex)")
    verify.add_argument("--user-data", type=_hex, help="expected user_data (hex)")
    verify.add_argument("--allow-debug", action="store_true", help="accept all-zero PCR0/1/2 (debug mode)")
    return parser


def _read(source: str, what: str = "document") -> bytes:
    """At most MAX_INPUT_BYTES of a regular file (or of stdin for ``-``); a device or a FIFO is refused first."""
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            if not Path(source).is_file():
                raise InvalidInput(f"cannot read {what} {source}: not a regular file", field=what)
            with open(source, "rb") as handle:
                data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {source}: {exc.strerror}", field=what) from None
    if len(data) > MAX_INPUT_BYTES:
        raise InvalidInput(f"{what} {source} is larger than {MAX_INPUT_BYTES} bytes", field=what)
    return data


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        data = decode_document_input(_read(args.document))
        root = None
        if args.root:
            _read(args.root, "root")  # exists, a regular file, bounded: load_root then reads it
            root = load_root(args.root)
        policy = PcrPolicy(expected=dict(args.pcr), allow_debug=args.allow_debug)
        result = verify_attestation(
            data,
            root=root,
            at=args.at,
            policy=policy,
            nonce=args.nonce,
            public_key=args.public_key,
            user_data=args.user_data,
        )
    except (AttestationError, InvalidInput) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(json.dumps(result.summary(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
