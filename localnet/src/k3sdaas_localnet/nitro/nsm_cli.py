"""``k3sdaas-localnet nsm --state DIR [--socket PATH] [--eif FILE | --pcr0 HEX --pcr1 HEX --pcr2 HEX]``.

Serves one simulated Nitro Secure Module on a Unix socket (default ``DIR/nsm.sock``) for processes that
reach the NSM through ``K3SDAAS_NSM_SOCKET`` (``k3sdaas.attestation.nsm.open_transport``), outside any
enclave. Documents are signed by the nitro-cli simulator's AWS-layout test CA, kept in ``DIR/pki`` as the
simulator keeps it (the root survives restarts; the intermediates are renewed when they would expire);
``DIR/root.pem`` is its root, the one a verifier pins. PCR0/1/2 (and PCR8 of a signed image) are the
EIF's measurements, or the given values, or zeros as in a debug-mode enclave; PCR4 is the instance ID's.

The socket appears once it serves and is removed on SIGTERM. Bad arguments exit 1 with one line and
leave the file system as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import stat
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import cbor2

from k3sdaas.attestation.cli import OneLineParser
from k3sdaas.attestation.nsm import NSM_RESPONSE_MAX, recv_frame, send_frame
from k3sdaas.errors import K3sdaasError
from k3sdaas.nitro.eif import EifError, Measurements, read_eif
from k3sdaas.nitro.measure import PCR_BYTES, ZERO_PCR, measure_string
from k3sdaas_localnet.nitro.enclave_process import PkiSource
from k3sdaas_localnet.nitro.nsm_sim import NsmServer, SimulatedNsm, boot_pcrs
from k3sdaas_localnet.nitro.state import ROLE_ENV, SimState, instance_id

PROG = "k3sdaas-localnet nsm"
SOCKET_NAME = "nsm.sock"
ROOT_NAME = "root.pem"
PCR_HEX = re.compile(rf"[0-9a-fA-F]{{{2 * PCR_BYTES}}}")


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="a simulated Nitro Secure Module on a Unix socket "
                                                  "(length-prefixed CBOR, as K3SDAAS_NSM_SOCKET expects)")
    parser.add_argument("--state", type=Path, required=True, help="state directory (test CA, root.pem, socket)")
    parser.add_argument("--socket", type=Path, help=f"Unix socket to serve on (default DIR/{SOCKET_NAME})")
    parser.add_argument("--eif", type=Path, help="report this enclave image's PCR0/1/2 (and PCR8 when signed)")
    for index in range(3):
        parser.add_argument(f"--pcr{index}", metavar="HEX", help=f"report this PCR{index} ({2 * PCR_BYTES} hex digits)")
    return parser


def _given_pcr(name: str, value: str) -> bytes:
    if not PCR_HEX.fullmatch(value):
        raise UsageError(f"--{name} must be {2 * PCR_BYTES} hex digits (a SHA-384 PCR), got {value!r}")
    return bytes.fromhex(value)


def image_measurements(args: argparse.Namespace) -> Measurements | None:
    """The image PCRs to report, or None for a debug-mode enclave's zeros."""
    given = {name: getattr(args, name) for name in ("pcr0", "pcr1", "pcr2") if getattr(args, name) is not None}
    if args.eif is not None and given:
        raise UsageError("--eif and --pcr0/--pcr1/--pcr2 are alternatives; give one")
    if args.eif is not None:
        try:
            info = read_eif(args.eif)
        except OSError as exc:
            raise UsageError(f"--eif {args.eif}: cannot read it: {exc.strerror or exc}") from None
        except EifError as exc:
            raise UsageError(f"--eif {args.eif}: not an enclave image file: {exc}") from None
        if not info.crc_ok:
            raise UsageError(f"--eif {args.eif}: not an enclave image file: its CRC does not match")
        return info.measurements
    if not given:
        return None
    values = {name: _given_pcr(name, value) for name, value in given.items()}
    missing = [f"--{name}" for name in ("pcr0", "pcr1", "pcr2") if name not in values]
    if missing:
        raise UsageError(f"{', '.join(missing)} missing: give --pcr0, --pcr1 and --pcr2 together")
    return Measurements(values["pcr0"], values["pcr1"], values["pcr2"])


def _check_socket_path(path: Path) -> None:
    """Refuse to replace anything but a stale socket: a file of the user's, or an NSM still serving."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise UsageError(f"--socket {path}: exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return  # nobody listens: left by a simulator that was killed
        with contextlib.suppress(K3sdaasError, OSError):  # a whole exchange, so an NSM serving there logs nothing
            probe.settimeout(2)
            send_frame(probe, cbor2.dumps("DescribeNSM"))
            recv_frame(probe, NSM_RESPONSE_MAX)
    raise UsageError(f"--socket {path}: another process is serving on it")


def _write_root(path: Path, pem: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(pem)
    temporary.replace(path)


def make_nsm(state: SimState, measurements: Measurements | None) -> SimulatedNsm:
    """As the nitro-cli simulator's enclave process builds one, with its own slot in the module ID."""
    instance = instance_id()
    role = os.environ.get(ROLE_ENV)
    image = measurements or Measurements(ZERO_PCR, ZERO_PCR, ZERO_PCR)
    pcrs = boot_pcrs(
        image.pcr0,
        image.pcr1,
        image.pcr2,
        pcr8=image.pcr8 or ZERO_PCR,
        instance_pcr=measure_string(instance),
        role_pcr=measure_string(role) if role else ZERO_PCR,
        debug=measurements is None,
    )
    slot_uid = (time.time_ns() // 1_000_000) << 16 | int.from_bytes(os.urandom(2), "big")  # as run-enclave's
    return SimulatedNsm(PkiSource(state, instance), f"{instance}-enc{slot_uid:x}", pcrs)


def serve(args: argparse.Namespace, measurements: Measurements | None) -> int:
    state_dir: Path = args.state
    address: Path = args.socket or state_dir / SOCKET_NAME
    _check_socket_path(address)
    root = state_dir / ROOT_NAME
    try:
        nsm = make_nsm(SimState(state_dir), measurements)
        _write_root(root, nsm.pki(nsm.clock()).root_pem())  # creates the CA on first start, keeps its root
    except OSError as exc:
        print(f"{PROG}: cannot keep state in {state_dir}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def terminate(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    try:
        server = NsmServer(nsm, str(address)).start()
    except OSError as exc:
        print(f"{PROG}: cannot serve on {address}: {exc}", file=sys.stderr)
        return 1
    try:
        kind = "debug mode, PCR0/1/2 zero" if measurements is None else f"PCR0 {measurements.pcr0.hex()[:16]}..."
        print(f"{PROG} serving {nsm.module_id} on {address} ({kind}; root {root})", flush=True)
        stop.wait()
    finally:
        server.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        measurements = image_measurements(args)
        return serve(args, measurements)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
