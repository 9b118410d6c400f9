"""Enclave Image Format v4 (aws-nitro-enclaves-image-format): writer, streaming reader, CRC and PCRs.

Layout: a 548-byte big-endian header, then sections, each a 12-byte header plus data, written
contiguously in nitro-cli's order Kernel, Cmdline, Metadata, Ramdisk..., [Signature]. The CRC-32
covers the header without its CRC field, then every section header and its data in file order.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, BinaryIO

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from k3sdaas.errors import InvalidInput
from k3sdaas.nitro.measure import ZERO_PCR, extend, measure_chunks

MAGIC = b".eif"
VERSION = 4
MAX_SECTIONS = 32
HEADER = struct.Struct(f">4sHHQQHH{MAX_SECTIONS}Q{MAX_SECTIONS}QII")
SECTION_HEADER = struct.Struct(">HHQ")
CRC_OFFSET = HEADER.size - 4
FLAG_ARM64 = 0x1
DEFAULT_MEM = 1 << 30
DEFAULT_CPUS = 2
HASH_ALGORITHM = "Sha384 { ... }"  # nitro-cli prints the Rust Debug form of its hasher
CHUNK = 1 << 20
BUILD_METADATA_KEYS = ("BuildTime", "BuildTool", "BuildToolVersion", "OperatingSystem", "KernelVersion")


class SectionType(IntEnum):
    INVALID = 0
    KERNEL = 1
    CMDLINE = 2
    RAMDISK = 3
    SIGNATURE = 4
    METADATA = 5


class EifError(InvalidInput):
    """The file is not a well-formed EIF; ``field`` names the broken header field or section."""


@dataclass(frozen=True)
class Section:
    kind: SectionType
    data: bytes | Path  # a Path is streamed, so multi-hundred-MB ramdisks never sit in memory

    @property
    def size(self) -> int:
        return len(self.data) if isinstance(self.data, bytes) else self.data.stat().st_size

    def chunks(self) -> Iterator[bytes]:
        if isinstance(self.data, bytes):
            yield self.data
            return
        with self.data.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk


def nitro_cli_sections(
    kernel: bytes | Path,
    cmdline: str,
    metadata: dict[str, Any],
    ramdisks: Sequence[bytes | Path],
    signature: bytes | None = None,
) -> list[Section]:
    """Sections in the order nitro-cli's EifBuilder writes them; metadata is compact serde_json."""
    if not ramdisks:
        raise EifError("an EIF needs at least one ramdisk", field="ramdisks")
    sections = [
        Section(SectionType.KERNEL, kernel),
        Section(SectionType.CMDLINE, cmdline.strip().encode()),
        Section(SectionType.METADATA, json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode()),
        *(Section(SectionType.RAMDISK, ramdisk) for ramdisk in ramdisks),
    ]
    if signature is not None:
        sections.append(Section(SectionType.SIGNATURE, signature))
    return sections


def write_eif(
    path: Path,
    sections: Sequence[Section],
    *,
    flags: int = 0,
    default_mem: int = DEFAULT_MEM,
    default_cpus: int = DEFAULT_CPUS,
) -> None:
    if not 0 < len(sections) <= MAX_SECTIONS:
        raise EifError(f"an EIF holds 1..{MAX_SECTIONS} sections, got {len(sections)}", field="num_sections")
    sizes = [section.size for section in sections]
    offsets, position = [], HEADER.size
    for size in sizes:
        offsets.append(position)
        position += SECTION_HEADER.size + size
    padding = [0] * (MAX_SECTIONS - len(sections))
    header = HEADER.pack(
        MAGIC, VERSION, flags, default_mem, default_cpus, 0, len(sections), *offsets, *padding, *sizes, *padding, 0, 0
    )
    crc = zlib.crc32(header[:CRC_OFFSET])
    with path.open("wb") as out:
        out.write(header)
        for section, size in zip(sections, sizes, strict=True):
            section_header = SECTION_HEADER.pack(section.kind, 0, size)
            out.write(section_header)
            crc = zlib.crc32(section_header, crc)
            for chunk in section.chunks():
                out.write(chunk)
                crc = zlib.crc32(chunk, crc)
        out.seek(CRC_OFFSET)
        out.write(struct.pack(">I", crc))


@dataclass(frozen=True)
class Measurements:
    pcr0: bytes
    pcr1: bytes
    pcr2: bytes
    pcr8: bytes | None = None

    def as_nitro_cli(self) -> dict[str, str]:
        """nitro-cli's BTreeMap: keys sorted, PCRs lowercase hex."""
        out = {
            "HashAlgorithm": HASH_ALGORITHM,
            "PCR0": self.pcr0.hex(),
            "PCR1": self.pcr1.hex(),
            "PCR2": self.pcr2.hex(),
        }
        if self.pcr8 is not None:
            out["PCR8"] = self.pcr8.hex()
        return out


@dataclass
class EifInfo:
    version: int
    flags: int
    default_mem: int
    default_cpus: int
    sections: list[tuple[SectionType, int, int]]  # kind, offset, size
    stored_crc: int
    computed_crc: int
    measurements: Measurements
    metadata: dict[str, Any] | None = None
    signature: bytes | None = None
    file_size: int = field(default=0)

    @property
    def crc_ok(self) -> bool:
        return self.stored_crc == self.computed_crc


def _parse_metadata(data: bytes) -> dict[str, Any]:
    try:
        metadata = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EifError(f"metadata section is not JSON: {exc}", field="metadata") from exc
    if not isinstance(metadata, dict):
        raise EifError("metadata section is not a JSON object", field="metadata")
    return metadata


def signing_certificate_pcr(signature: bytes) -> bytes:
    """PCR8 of a signed EIF: the measurement of the DER signing certificate in the first PcrSignature.

    serde_cbor writes the Vec<u8> fields as arrays of small integers, not byte strings.
    """
    try:
        entries = cbor2.loads(signature)
        pem = bytes(entries[0]["signing_certificate"])
        der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    except (cbor2.CBORDecodeError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise EifError(f"signature section is malformed: {exc}", field="signature") from exc
    return measure_chunks([der])


def _read_exact(handle: BinaryIO, size: int, what: str) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise EifError(f"EIF is truncated in {what}", field=what)
    return data


def read_eif(path: Path) -> EifInfo:
    """Parse the header and every section in one streaming pass, computing the CRC and PCR0/1/2(/8)."""
    with path.open("rb") as handle:
        raw_header = _read_exact(handle, HEADER.size, "header")
        magic, version, flags, default_mem, default_cpus, _reserved, count, *rest = HEADER.unpack(raw_header)
        offsets, sizes, stored_crc = rest[:MAX_SECTIONS], rest[MAX_SECTIONS : 2 * MAX_SECTIONS], rest[-1]
        if magic != MAGIC:
            raise EifError(f"bad magic {magic!r}, expected {MAGIC!r}", field="magic")
        if not 1 <= version <= VERSION:
            raise EifError(f"unsupported EIF version {version}", field="version")
        if not 0 < count <= MAX_SECTIONS:
            raise EifError(f"num_sections is {count}", field="num_sections")
        crc = zlib.crc32(raw_header[:CRC_OFFSET])
        image, bootstrap, app = hashlib.sha384(), hashlib.sha384(), hashlib.sha384()
        sections: list[tuple[SectionType, int, int]] = []
        metadata = signature = None
        ramdisks = 0
        for index in range(count):
            if handle.tell() != offsets[index]:
                raise EifError(
                    f"section {index} offset {offsets[index]} does not follow the previous section",
                    field=f"section_offsets[{index}]",
                )
            section_header = _read_exact(handle, SECTION_HEADER.size, f"section {index} header")
            kind_value, _flags, size = SECTION_HEADER.unpack(section_header)
            if kind_value not in SectionType._value2member_map_ or kind_value == SectionType.INVALID:
                raise EifError(f"section {index} has invalid type {kind_value}", field=f"section {index}")
            if size != sizes[index]:
                raise EifError(
                    f"section {index} size {size} differs from header size {sizes[index]}",
                    field=f"section_sizes[{index}]",
                )
            kind = SectionType(kind_value)
            crc = zlib.crc32(section_header, crc)
            measured = {SectionType.KERNEL: (image, bootstrap), SectionType.CMDLINE: (image, bootstrap)}.get(kind, ())
            if kind == SectionType.RAMDISK:
                measured = (image, bootstrap) if ramdisks == 0 else (image, app)
                ramdisks += 1
            kept = bytearray() if kind in (SectionType.METADATA, SectionType.SIGNATURE) else None
            remaining = size
            while remaining:
                chunk = _read_exact(handle, min(CHUNK, remaining), f"section {index}")
                remaining -= len(chunk)
                crc = zlib.crc32(chunk, crc)
                for digest in measured:
                    digest.update(chunk)
                if kept is not None:
                    kept += chunk
            if kind == SectionType.METADATA and kept is not None:
                metadata = _parse_metadata(bytes(kept))
            if kind == SectionType.SIGNATURE and kept is not None:
                signature = bytes(kept)
            sections.append((kind, offsets[index], size))
        file_size = handle.seek(0, 2)
    measurements = Measurements(
        pcr0=extend(ZERO_PCR, image.digest()),
        pcr1=extend(ZERO_PCR, bootstrap.digest()),
        pcr2=extend(ZERO_PCR, app.digest()),
        pcr8=signing_certificate_pcr(signature) if signature else None,
    )
    return EifInfo(
        version,
        flags,
        default_mem,
        default_cpus,
        sections,
        stored_crc,
        crc,
        measurements,
        metadata,
        signature,
        file_size,
    )


def describe_identity(metadata: dict[str, Any]) -> dict[str, Any]:
    """ImageName, ImageVersion and Metadata as describe-eif and describe-enclaves --metadata print them."""
    build = metadata.get("BuildMetadata", {})
    described = {key: build.get(key) for key in BUILD_METADATA_KEYS}
    described["DockerInfo"] = metadata.get("DockerInfo")
    custom = metadata.get("CustomMetadata")
    if isinstance(custom, dict):
        described.update(custom)  # nitro-cli flattens custom metadata into Metadata
    return {"ImageName": metadata.get("ImageName"), "ImageVersion": metadata.get("ImageVersion"), "Metadata": described}


def describe_eif(info: EifInfo) -> dict[str, Any]:
    """``nitro-cli describe-eif`` output (EifDescribeInfo key order) for an unsigned EIF."""
    out: dict[str, Any] = {
        "EifVersion": info.version,
        "Measurements": info.measurements.as_nitro_cli(),
        "IsSigned": info.signature is not None,
        "CheckCRC": info.crc_ok,
    }
    if info.metadata is not None:
        out.update(describe_identity(info.metadata))
    return out
