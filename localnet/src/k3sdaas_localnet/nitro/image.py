"""EIFs the way nitro-cli builds them, from a container filesystem, with fixed stand-in boot blobs.

Ramdisk 0 is the bootstrap (dev/, init, nsm.ko) and ramdisk 1 the application: ``rootfs/`` plus the
``cmd`` and ``env`` files AWS's init reads. The stand-in kernel and bootstrap never change, so PCR1
is constant like AWS's; PCR2 depends only on the image filesystem, command and environment.
"""

from __future__ import annotations

import io
import stat
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec

from k3sdaas.attestation.cose import sign1
from k3sdaas.errors import InvalidInput
from k3sdaas.nitro.eif import Measurements, SectionType, nitro_cli_sections, read_eif, write_eif
from k3sdaas_localnet.nitro import cpio

SIMULATED_CLI_VERSION = "1.4.2"
KERNEL_CONFIG_HEADER = "# Linux/x86_64 4.14.256-209.484.amzn2.x86_64 Kernel Configuration"
OPERATING_SYSTEM, KERNEL_VERSION = "Linux", "4.14.256"  # parsed from the header as nitro-cli does
X86_64_CMDLINE = (
    "reboot=k panic=30 pci=off nomodules console=ttyS0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd "
    "random.trust_cpu=on"
)
STAND_IN_KERNEL = b"k3sdaas nitro simulator stand-in kernel (not bootable)\n" + KERNEL_CONFIG_HEADER.encode() + b"\n"
STAND_IN_INIT = b"#!/bin/sh\n# k3sdaas nitro simulator stand-in for AWS's enclave /init\n"
STAND_IN_NSM_MODULE = b"k3sdaas nitro simulator stand-in for nsm.ko\n"
ROOTFS = "rootfs"


def bootstrap_ramdisk() -> bytes:
    out = io.BytesIO()
    writer = cpio.Writer(out)
    writer.add(cpio.Entry("dev", stat.S_IFDIR | 0o755))
    writer.add(cpio.Entry("dev/console", stat.S_IFCHR | 0o600, rdev_major=5, rdev_minor=1))
    writer.add(cpio.Entry("init", stat.S_IFREG | 0o755, STAND_IN_INIT))
    writer.add(cpio.Entry("nsm.ko", stat.S_IFREG | 0o644, STAND_IN_NSM_MODULE))
    writer.close()
    return out.getvalue()


def _tar_entries(tar: tarfile.TarFile) -> Iterator[cpio.Entry]:
    members = sorted((m for m in tar.getmembers() if m.name.strip("./")), key=lambda m: m.name.lstrip("./"))
    for member in members:
        name = f"{ROOTFS}/{member.name.lstrip('./')}"
        perm, uid, gid = member.mode & 0o7777, member.uid, member.gid
        if member.isdir():
            yield cpio.Entry(name, stat.S_IFDIR | perm, uid=uid, gid=gid)
        elif member.issym():
            yield cpio.Entry(name, stat.S_IFLNK | 0o777, member.linkname.encode(), uid=uid, gid=gid)
        elif member.isfile() or member.islnk():  # hard links become copies: one link per inode
            handle = tar.extractfile(member)
            yield cpio.Entry(name, stat.S_IFREG | perm, handle.read() if handle else b"", uid=uid, gid=gid)
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            yield cpio.Entry(
                name, kind | perm, uid=uid, gid=gid, rdev_major=member.devmajor, rdev_minor=member.devminor
            )
        elif member.isfifo():
            yield cpio.Entry(name, stat.S_IFIFO | perm, uid=uid, gid=gid)


def write_app_ramdisk(rootfs_tar: Path, command: Sequence[str], env: Sequence[str], out: BinaryIO) -> None:
    writer = cpio.Writer(out)
    writer.add(cpio.Entry(ROOTFS, stat.S_IFDIR | 0o755))
    with tarfile.open(rootfs_tar, "r:") as tar:
        for entry in _tar_entries(tar):
            writer.add(entry)
    writer.add(cpio.Entry("cmd", stat.S_IFREG | 0o644, "\n".join(command).encode()))
    writer.add(cpio.Entry("env", stat.S_IFREG | 0o644, "\n".join(env).encode()))
    writer.close()


def build_time(ns: int | None = None) -> str:
    """chrono's RFC 3339 with nanoseconds, e.g. 2025-10-05T13:12:27.410516995+00:00."""
    seconds, nanos = divmod(time.time_ns() if ns is None else ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{nanos:09d}+00:00"


def identity_metadata(
    image_name: str, image_version: str, docker_info: Any, custom: dict[str, Any] | None, built: str
) -> dict[str, Any]:
    """EifIdentityInfo, the metadata section's JSON, in serde field order."""
    return {
        "ImageName": image_name,
        "ImageVersion": image_version,
        "BuildMetadata": {
            "BuildTime": built,
            "BuildTool": "nitro-cli",
            "BuildToolVersion": SIMULATED_CLI_VERSION,
            "OperatingSystem": OPERATING_SYSTEM,
            "KernelVersion": KERNEL_VERSION,
        },
        "DockerInfo": docker_info,
        "CustomMetadata": custom,
    }


def build_eif(
    rootfs_tar: Path,
    output: Path,
    *,
    command: Sequence[str],
    env: Sequence[str],
    metadata: dict[str, Any],
    sign: Callable[[bytes], bytes] | None = None,
) -> Measurements:
    """Write the EIF; ``sign(pcr0)`` returns the signature section of a signed build (PCR0 excludes it)."""
    app = output.with_name(output.name + ".ramdisk.tmp")
    try:
        with app.open("wb") as handle:
            write_app_ramdisk(rootfs_tar, command, env, handle)
        ramdisks: list[bytes | Path] = [bootstrap_ramdisk(), app]
        write_eif(output, nitro_cli_sections(STAND_IN_KERNEL, X86_64_CMDLINE, metadata, ramdisks))
        if sign is not None:
            signature = sign(read_eif(output).measurements.pcr0)
            write_eif(output, nitro_cli_sections(STAND_IN_KERNEL, X86_64_CMDLINE, metadata, ramdisks, signature))
    finally:
        app.unlink(missing_ok=True)
    return read_eif(output).measurements


def signature_section(pcr0: bytes, certificate_pem: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """nitro-cli's signature section: serde_cbor of [PcrSignature{signing_certificate, signature}], the signature
    a COSE_Sign1 (ES384) over PcrInfo{register_index: 0, register_value: PCR0}; serde_cbor writes each
    Vec<u8> as an array of small integers."""
    pcr_info = cbor2.dumps({"register_index": 0, "register_value": list(pcr0)})
    signed = sign1(pcr_info, key).encode()
    return cbor2.dumps([{"signing_certificate": list(certificate_pem), "signature": list(signed)}])


@dataclass(frozen=True)
class Application:
    """What run-enclave needs from an EIF's application ramdisk to start it as a container."""

    rootfs_tar: bytes
    command: list[str]
    env: list[str]


def _section_data(path: Path, index: int) -> bytes:
    info = read_eif(path)
    ramdisks = [(offset, size) for kind, offset, size in info.sections if kind == SectionType.RAMDISK]
    if len(ramdisks) <= index:
        raise InvalidInput(f"EIF {path} has no ramdisk {index}", field="eif_path")
    offset, size = ramdisks[index]
    with path.open("rb") as handle:
        handle.seek(offset + 12)
        return handle.read(size)


def read_application(path: Path) -> Application:
    """Turn ramdisk 1 back into a tar of rootfs/ (for docker import) plus the command and environment."""
    buffer = io.BytesIO()
    command: list[str] = []
    env: list[str] = []
    with tarfile.open(fileobj=buffer, mode="w:") as tar:
        for entry in cpio.read_entries(_section_data(path, 1)):
            if entry.name in ("cmd", "env"):
                lines = [line for line in entry.data.decode().split("\n") if line]
                command, env = (lines, env) if entry.name == "cmd" else (command, lines)
                continue
            if not entry.name.startswith(f"{ROOTFS}/"):
                continue
            info = tarfile.TarInfo(entry.name[len(ROOTFS) + 1 :])
            info.mode, info.uid, info.gid, info.mtime = entry.mode & 0o7777, entry.uid, entry.gid, entry.mtime
            kind = stat.S_IFMT(entry.mode)
            kinds = {
                stat.S_IFDIR: tarfile.DIRTYPE,
                stat.S_IFLNK: tarfile.SYMTYPE,
                stat.S_IFCHR: tarfile.CHRTYPE,
                stat.S_IFBLK: tarfile.BLKTYPE,
                stat.S_IFIFO: tarfile.FIFOTYPE,
            }
            info.type = kinds.get(kind, tarfile.REGTYPE)
            if kind == stat.S_IFLNK:
                info.linkname = entry.data.decode()
            info.devmajor, info.devminor = entry.rdev_major, entry.rdev_minor
            body = io.BytesIO(entry.data) if kind == stat.S_IFREG else None
            info.size = len(entry.data) if body else 0
            tar.addfile(info, body)
    return Application(buffer.getvalue(), command, env)
