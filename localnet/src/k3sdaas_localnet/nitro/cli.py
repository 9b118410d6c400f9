"""A nitro-cli-compatible simulator: same argv, stdout/stderr bytes, error blocks and exit codes.

``k3sdaas-localnet nitro-cli ARGS`` calls ``main(ARGS)``; ``nitro-cli-sim`` (installable as
``nitro-cli``) calls ``run()``. Enclaves are containers of the EIF's application with a simulated NSM.

Environment:
  K3SDAAS_NITRO_SIM_STATE        state directory (default $XDG_STATE_HOME/k3sdaas/nitro-sim); the
                                 test CA that signs attestation documents is pki/root.pem in it
  K3SDAAS_NITRO_SIM_INSTANCE_ID  parent instance ID (default: DMI board asset tag, else i-0000000000000000)
  K3SDAAS_NITRO_SIM_IAM_ROLE     parent IAM role ARN measured into PCR3 (default: PCR3 stays zero)
  K3SDAAS_NITRO_SIM_ALLOCATOR    allocator.yaml (default /etc/nitro_enclaves/allocator.yaml, else 8 GiB, 2 CPUs)
  K3SDAAS_NITRO_SIM_RUNTIME      docker (default) or none: a headless enclave serving only its NSM
  K3SDAAS_NITRO_SIM_NETWORK      container network (default none: an enclave has no NIC)
  NITRO_CLI_LOGS_PATH            where err<time>.log files go (default: the state's logs/)
Inside the enclave container: K3SDAAS_NSM_SOCKET (the NSM) and K3SDAAS_VSOCK_DIR, a directory shared
with the parent as <state>/vsock/<enclave CID>, for Unix-socket stand-ins of vsock ports.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from k3sdaas.errors import InvalidInput
from k3sdaas.nitro.eif import EifError, EifInfo, describe_eif, describe_identity, read_eif
from k3sdaas.nitro.errors import error_block, error_code, error_message
from k3sdaas.nitro.measure import measure_chunks
from k3sdaas.nitro.records import (
    FLAGS_DEBUG,
    FLAGS_NONE,
    EnclaveDescribeInfo,
    EnclaveRunInfo,
    EnclaveTerminateInfo,
    render_json,
)
from k3sdaas_localnet.nitro import docker
from k3sdaas_localnet.nitro.image import (
    SIMULATED_CLI_VERSION,
    build_eif,
    build_time,
    identity_metadata,
    signature_section,
)
from k3sdaas_localnet.nitro.state import Allocator, EnclaveRecord, SimState, instance_id, state_dir

MIB = 1 << 20
EIF_MEMORY_FACTOR = 4
HUGEPAGE_MIB = 2
FIRST_AUTO_CID = 16
MAX_CID = (1 << 32) - 1
RESERVED_CIDS = {1, 2, 3, MAX_CID}  # local, hypervisor, parent; u32::MAX is VMADDR_CID_ANY
BOOT_TIMEOUT = 600.0
TERMINATE_TIMEOUT = 60.0
MAX_CUSTOM_METADATA = 4096


class Failure(Exception):
    """An nitro-cli error: ``inner`` ones happen in the enclave process and are followed by E39."""

    def __init__(self, code: int, *args: object, inner: bool = False) -> None:
        super().__init__(code, *args)
        self.code, self.details, self.inner = code, args, inner


class Streams:
    """stdout/stderr of one invocation (injectable so in-process callers can capture them)."""

    def __init__(self, stdout: TextIO, stderr: TextIO, state: SimState) -> None:
        self.stdout, self.stderr, self.state = stdout, stderr, state

    def out(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def err(self, text: str) -> None:
        self.stderr.write(text)
        self.stderr.flush()

    def log_path(self, message: str) -> str:
        """nitro-cli writes each error's details to err<RFC 3339 with nanoseconds>.log."""
        logs = Path(os.environ.get("NITRO_CLI_LOGS_PATH") or self.state.root / "logs")
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / f"err{build_time()}.log"
        path.write_text(message + "\n")
        return str(path)

    def error(self, code: int, args: Sequence[object] = ()) -> None:
        log = self.log_path(f"[ {error_code(code)} ] {error_message(code, args)}")
        self.err(error_block(code, args, log))

    def report(self, failure: Failure) -> int:
        self.error(failure.code, failure.details)
        if not failure.inner:
            return failure.code
        self.err("Failed connections: 1\n")
        self.error(39)
        return 39


# ---------------------------------------------------------------- build-enclave / describe-eif / pcr


def _read_input(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        raise Failure(19, path, "Open") from None


def _custom_metadata(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    raw = _read_input(path)
    if len(raw) > MAX_CUSTOM_METADATA:
        raise Failure(48)
    try:
        custom = json.loads(raw)
    except json.JSONDecodeError:
        raise Failure(48) from None
    if not isinstance(custom, dict):
        raise Failure(48)
    return custom


def _signer(args: argparse.Namespace) -> Callable[[bytes], bytes] | None:
    """The signing of ``--signing-certificate``/``--private-key`` (PEM files; a KMS key is not simulated)."""
    if not args.signing_certificate and not args.private_key:
        return None
    if not args.signing_certificate or not args.private_key or args.private_key.startswith("arn:"):
        raise Failure(60)
    try:
        pem = _read_input(args.signing_certificate)
        x509.load_pem_x509_certificate(pem)
        key = serialization.load_pem_private_key(_read_input(args.private_key), password=None)
    except (Failure, ValueError, TypeError):
        raise Failure(60) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise Failure(60)
    return lambda pcr0: signature_section(pcr0, pem, key)


def build_enclave(args: argparse.Namespace, io: Streams) -> int:
    sign = _signer(args)
    io.err("Start building the Enclave Image...\n")
    try:
        if args.docker_dir:
            docker.build(args.docker_uri, Path(args.docker_dir))
        image = docker.image_inspect(args.docker_uri)
    except docker.DockerFailed:
        raise Failure(49 if args.docker_dir else 50) from None
    if image is None:
        raise Failure(50)  # there is no registry to pull from here
    if not args.docker_dir:
        io.err("Using the locally available Docker image...\n")
    custom = _custom_metadata(args.metadata)
    name = args.name or args.docker_uri.split(":")[0]
    version = args.version or image["Id"].removeprefix("sha256:")
    metadata = identity_metadata(name, version, image, custom, build_time())
    command, env = docker.image_command(image)
    output = Path(args.output_file)
    with tempfile.TemporaryDirectory(dir=output.resolve().parent) as work:
        rootfs = Path(work) / "rootfs.tar"
        try:
            docker.export_rootfs(image["Id"], rootfs)
            measurements = build_eif(rootfs, output, command=command, env=env, metadata=metadata, sign=sign)
        except (docker.DockerFailed, OSError, InvalidInput):
            raise Failure(48) from None
    io.err("Enclave Image successfully created.\n")
    io.out(render_json({"Measurements": measurements.as_nitro_cli()}))
    return 0


def _read_eif(path: str, *, inner: bool) -> EifInfo:
    try:
        return read_eif(Path(path))
    except OSError:
        raise Failure(19, path, "Open", inner=inner) from None
    except EifError:
        raise Failure(35, inner=inner) from None


def describe_eif_command(args: argparse.Namespace, io: Streams) -> int:
    io.out(render_json(describe_eif(_read_eif(args.eif_path, inner=False))))
    return 0


def pcr_command(args: argparse.Namespace, io: Streams) -> int:
    if args.signing_certificate:
        try:
            cert = x509.load_pem_x509_certificate(_read_input(args.signing_certificate))
        except ValueError:
            raise Failure(59) from None
        der = cert.public_bytes(Encoding.DER)
        io.out(render_json({"PCR8": measure_chunks([der]).hex()}))
    else:
        io.out(render_json({"PCR": measure_chunks([_read_input(args.input)]).hex()}))
    return 0


# ---------------------------------------------------------------- run-enclave


def _parse_memory(text: str) -> int:
    units = {"M": 1, "G": 1024, "T": 1024 * 1024}
    number, unit = (text[:-1], units[text[-1].upper()]) if text and text[-1].upper() in units else (text, 1)
    if not (number.isascii() and number.isdigit()) or int(number) * unit >= 1 << 64:
        raise Failure(3, "memory", text)
    return int(number) * unit


def _int_arg(name: str, text: str | int | None, bits: int = 64) -> int | None:
    """nitro-cli's ``value.parse::<u32|u64>()``: digits only (no sign) within the type's range, else E03."""
    if text is None:
        return None
    if isinstance(text, bool) or not (isinstance(text, int) or (str(text).isascii() and str(text).isdigit())):
        raise Failure(3, name, text)
    if not 0 <= int(text) < 1 << bits:
        raise Failure(3, name, text)
    return int(text)


def _apply_config(args: argparse.Namespace) -> None:
    """--config FILE: the JSON keys nitro-cli accepts instead of flags."""
    try:
        config = json.loads(_read_input(args.config))
    except json.JSONDecodeError:
        raise Failure(3, "config", args.config) from None
    if not isinstance(config, dict):
        raise Failure(3, "config", args.config)
    args.enclave_name = config.get("enclave_name")
    args.cpu_count = config.get("cpu_count")
    args.cpu_ids = config.get("cpu_ids")
    args.memory = str(config.get("memory_mib", ""))
    args.eif_path = config.get("eif_path")
    args.enclave_cid = config.get("enclave_cid")
    args.debug_mode = bool(config.get("debug_mode", False))
    args.attach_console = bool(config.get("attach_console", False))


def _allocate_cpus(args: argparse.Namespace, pool: list[int], used: set[int]) -> list[int]:
    if args.cpu_ids is not None:
        wanted = [_int_arg("cpu-id", cpu, 32) or 0 for cpu in args.cpu_ids]
        duplicates = sorted({cpu for cpu in wanted if wanted.count(cpu) > 1})
        if duplicates:
            raise Failure(20, "cpu-ids", ", ".join(map(str, duplicates)), inner=True)
        for cpu in wanted:
            if cpu not in pool or cpu in used:
                raise Failure(21, "cpu-ids", cpu, inner=True)
        return wanted
    count = _int_arg("cpu-count", args.cpu_count, 32) or 0
    free = [cpu for cpu in pool if cpu not in used]
    if count > len(free):
        raise Failure(22, "cpu-count", count, inner=True)
    return free[:count]


def _unique_name(wanted: str, taken: set[str]) -> str:
    name, suffix = wanted, 0
    while name in taken:
        suffix += 1
        name = f"{wanted}_{suffix}"
    return name


def _slot_uid() -> int:
    """Start time in milliseconds and 16 random bits, printed as unpadded hex like AWS's slot uids."""
    return (time.time_ns() // 1_000_000) << 16 | int.from_bytes(os.urandom(2), "big")


def _spawn_enclave_process(state: SimState, record: EnclaveRecord) -> int:
    with (state.root / "logs" / f"enclave-{record.slot}.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "k3sdaas_localnet.nitro.enclave_process", str(state.root), record.slot],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    return process.pid


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this very process is not alive
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def _await_boot(state: SimState, record: EnclaveRecord) -> EnclaveRecord:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        current = state.load(record.slot)
        if current is not None and current.status == "running":
            return current
        if current is None or current.status == "failed" or not _pid_alive(record.pid):
            break
        time.sleep(0.05)
    state.remove(record.slot)
    raise Failure(36, inner=True)


def run_enclave(args: argparse.Namespace, io: Streams) -> int:
    if args.config:
        _apply_config(args)
    if not args.memory or not args.eif_path:
        raise Failure(1, "memory" if not args.memory else "eif-path")
    if args.cpu_count is not None and args.cpu_ids is not None:
        raise Failure(2, "cpu-count", "cpu-ids")
    if args.cpu_count is None and args.cpu_ids is None:
        raise Failure(1, "cpu-count")
    # Every argument is parsed before anything is printed, as nitro-cli's RunEnclavesArgs::new_with does.
    for cpu in args.cpu_ids or []:
        _int_arg("cpu-id", cpu, 32)
    if args.cpu_count is not None and not _int_arg("cpu-count", args.cpu_count, 32):
        # nitro-cli itself passes 0 on and fails at the start ioctl; refusing it here keeps "nothing started".
        raise Failure(3, "cpu-count", args.cpu_count)
    memory = _parse_memory(str(args.memory))
    cid = _int_arg("enclave-cid", args.enclave_cid)
    if cid is not None and (cid in RESERVED_CIDS or cid > MAX_CID):
        raise Failure(3, "enclave-cid", cid)
    eif = _read_eif(args.eif_path, inner=True)
    if memory == 0:
        raise Failure(26, "memory", memory, inner=True)
    minimum = -(-EIF_MEMORY_FACTOR * eif.file_size // MIB)
    if memory * MIB < EIF_MEMORY_FACTOR * eif.file_size:
        raise Failure(26, "memory", memory, minimum, inner=True)
    io.err("Start allocating memory...\n")
    allocator = Allocator.load()
    with io.state.locked():
        running = io.state.records()
        cpus = _allocate_cpus(args, allocator.cpu_pool, {cpu for r in running for cpu in r.cpu_ids})
        allocated = -(-memory // HUGEPAGE_MIB) * HUGEPAGE_MIB
        if allocated + sum(r.memory_mib for r in running) > allocator.memory_mib:
            raise Failure(27, "memory", memory, inner=True)
        used_cids = {r.cid for r in running}
        if cid == 0:
            io.err("The enclave CID will be auto-generated as the provided CID is 0\n")
        if not cid:
            cid = next(c for c in range(FIRST_AUTO_CID, 1 << 32) if c not in used_cids)
        elif cid in used_cids:
            raise Failure(29, inner=True)
        slot_uid = _slot_uid()
        default_name = Path(args.eif_path).name.removesuffix(".eif")
        record = EnclaveRecord(
            slot_uid=slot_uid,
            enclave_id=f"{instance_id()}-enc{slot_uid:x}",
            name=_unique_name(args.enclave_name or default_name, {r.name for r in running}),
            cid=cid,
            cpu_ids=cpus,
            memory_mib=allocated,
            debug_mode=bool(args.debug_mode),
            eif_path=str(Path(args.eif_path).resolve()),
            measurements=eif.measurements.as_nitro_cli(),
            metadata=eif.metadata,
        )
        io.state.save(record)
        record.pid = _spawn_enclave_process(io.state, record)
        io.state.save(record)
    record = _await_boot(io.state, record)
    io.err(
        f"Started enclave with enclave-cid: {record.cid}, memory: {record.memory_mib} MiB, "
        f"cpu-ids: [{', '.join(map(str, record.cpu_ids))}]\n"
    )
    info = EnclaveRunInfo(
        record.name, record.enclave_id, record.pid, record.cid, len(record.cpu_ids), record.cpu_ids, record.memory_mib
    )
    io.out(render_json(info.to_json()))
    if args.attach_console:
        return _stream_console(io, record, None)
    return 0


# ---------------------------------------------------------------- describe / terminate / console


def _describe(record: EnclaveRecord, with_metadata: bool) -> EnclaveDescribeInfo:
    extra: dict[str, Any] = {}
    if with_metadata and record.metadata is not None:
        described = describe_identity(record.metadata)
        extra = {
            "image_name": described["ImageName"],
            "image_version": described["ImageVersion"],
            "metadata": described["Metadata"],
        }
    return EnclaveDescribeInfo(
        record.name,
        record.enclave_id,
        record.pid,
        record.cid,
        len(record.cpu_ids),
        record.cpu_ids,
        record.memory_mib,
        "RUNNING",
        FLAGS_DEBUG if record.debug_mode else FLAGS_NONE,
        record.measurements,
        **extra,
    )


def _clean_up_dead(state: SimState, record: EnclaveRecord) -> None:
    """An enclave process that died without terminating leaves its container and sockets behind."""
    if record.container:
        try:
            docker.docker("rm", "-f", record.container)
        except docker.DockerFailed:
            pass  # already removed, or Docker is gone with it
    shutil.rmtree(state.run_dir(record.slot), ignore_errors=True)
    state.vsock_link(record.cid).unlink(missing_ok=True)
    state.console_log(record.slot).unlink(missing_ok=True)
    state.remove(record.slot)


def _live_records(io: Streams) -> tuple[list[EnclaveRecord], int]:
    """Running enclaves whose process answers; records of dead processes count as failed connections."""
    live, failed = [], 0
    with io.state.locked():
        for record in io.state.records():
            if record.status != "running":
                continue
            if _pid_alive(record.pid):
                live.append(record)
            else:
                failed += 1
                _clean_up_dead(io.state, record)
    return live, failed


def describe_enclaves(args: argparse.Namespace, io: Streams) -> int:
    live, failed = _live_records(io)
    io.out(render_json([_describe(record, args.metadata).to_json() for record in live]))
    if failed:
        io.err(f"Failed connections: {failed}\n")
        io.error(39)
        return 39
    return 0


def _find(io: Streams, enclave_id: str | None, name: str | None) -> EnclaveRecord:
    live, _ = _live_records(io)
    for record in live:
        if (enclave_id is not None and record.enclave_id == enclave_id) or (name is not None and record.name == name):
            return record
    raise Failure(11 if enclave_id is not None else 58)


def _terminate(io: Streams, record: EnclaveRecord) -> EnclaveTerminateInfo:
    try:
        os.kill(record.pid, signal.SIGTERM)
    except ProcessLookupError:
        io.state.remove(record.slot)
    deadline = time.monotonic() + TERMINATE_TIMEOUT
    while io.state.load(record.slot) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    if io.state.load(record.slot) is not None:
        raise Failure(11)
    io.err(f"Successfully terminated enclave {record.enclave_id}.\n")
    return EnclaveTerminateInfo(record.name, record.enclave_id, True)


def terminate_enclave(args: argparse.Namespace, io: Streams) -> int:
    if args.all:
        live, _ = _live_records(io)
        io.out(render_json([_terminate(io, record).to_json() for record in live]))
        return 0
    record = _find(io, args.enclave_id, args.enclave_name)
    io.out(render_json(_terminate(io, record).to_json()))
    return 0


def _stream_console(io: Streams, record: EnclaveRecord, timeout: float | None) -> int:
    io.out(f"Connecting to the console for enclave {record.cid}...\n")
    io.out("Successfully connected to the console.\n")
    path = io.state.console_log(record.slot)
    deadline = None if timeout is None else time.monotonic() + timeout
    position = 0
    while deadline is None or time.monotonic() < deadline:
        try:
            with path.open("rb") as handle:
                handle.seek(position)
                chunk = handle.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            position += len(chunk)
            io.out(chunk.decode(errors="replace"))
        elif io.state.load(record.slot) is None:
            return 0  # the enclave terminated
        else:
            time.sleep(0.1)
    return 0


def console(args: argparse.Namespace, io: Streams) -> int:
    record = _find(io, args.enclave_id, args.enclave_name)
    if not record.debug_mode:
        raise Failure(44)
    return _stream_console(io, record, args.disconnect_timeout)


# ---------------------------------------------------------------- argv


def _enclave_selector(parser: argparse.ArgumentParser, *, allow_all: bool = False) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--enclave-id")
    group.add_argument("--enclave-name")
    if allow_all:
        group.add_argument("--all", action="store_true")


class ClapStyleParser(argparse.ArgumentParser):
    """Argument errors the way nitro-cli's clap parser reports them: ``error:`` line, usage, hint, exit 2."""

    def error(self, message: str) -> NoReturn:
        unexpected = re.match(r"unrecognized arguments: (\S+)", message)
        if unexpected:
            message = f"Found argument '{unexpected.group(1)}' which wasn't expected, or isn't valid in this context"
        usage = self.format_usage().removeprefix("usage: ").strip()
        self.exit(2, f"error: {message}\n\nUSAGE:\n    {usage}\n\nFor more information try --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ClapStyleParser(prog="nitro-cli", description="Nitro CLI (k3sdaas simulator)")
    parser.add_argument("--version", action="version", version=f"Nitro CLI {SIMULATED_CLI_VERSION}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ClapStyleParser)

    def command(name: str, handler: Callable[[argparse.Namespace, Streams], int]) -> argparse.ArgumentParser:
        sub = commands.add_parser(name)
        sub.set_defaults(handler=handler)
        return sub

    build = command("build-enclave", build_enclave)
    build.add_argument("--docker-uri", required=True)
    build.add_argument("--docker-dir")
    build.add_argument("--output-file", required=True)
    build.add_argument("--signing-certificate")
    build.add_argument("--private-key")
    build.add_argument("--name")
    build.add_argument("--version")
    build.add_argument("--metadata")

    run = command("run-enclave", run_enclave)
    run.add_argument("--config")
    run.add_argument("--cpu-count")
    run.add_argument("--cpu-ids", nargs="+")
    run.add_argument("--memory")
    run.add_argument("--eif-path")
    run.add_argument("--enclave-cid")
    run.add_argument("--enclave-name")
    run.add_argument("--debug-mode", action="store_true")
    run.add_argument("--attach-console", action="store_true")

    describe = command("describe-enclaves", describe_enclaves)
    describe.add_argument("--metadata", action="store_true")

    _enclave_selector(command("terminate-enclave", terminate_enclave), allow_all=True)

    eif = command("describe-eif", describe_eif_command)
    eif.add_argument("--eif-path", required=True)

    attach = command("console", console)
    _enclave_selector(attach)
    attach.add_argument("--disconnect-timeout", type=float)

    pcr = command("pcr", pcr_command)
    source = pcr.add_mutually_exclusive_group(required=True)
    source.add_argument("--input")
    source.add_argument("--signing-certificate")
    return parser


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    io = Streams(stdout or sys.stdout, stderr or sys.stderr, SimState(state_dir()))
    try:
        return args.handler(args, io)
    except Failure as failure:
        return io.report(failure)
    except InvalidInput as exc:  # the simulator's own configuration, e.g. a malformed allocator.yaml
        io.err(f"nitro-cli simulator: {exc}\n")
        return 1


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
