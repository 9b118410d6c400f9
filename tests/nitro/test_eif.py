"""EIF v4 layout, CRC, PCR formulas, tamper detection, the cpio ramdisks, and describe-eif vs golden."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from k3sdaas.nitro.eif import (
    HEADER,
    EifError,
    Section,
    SectionType,
    describe_eif,
    nitro_cli_sections,
    read_eif,
    write_eif,
)
from k3sdaas_localnet.nitro import cpio
from k3sdaas_localnet.nitro.image import STAND_IN_KERNEL, X86_64_CMDLINE, bootstrap_ramdisk, build_eif, read_application

from .conftest import APP_FILES, golden, rootfs_tar

ZERO = bytes(48)


def _pcr(*parts: bytes) -> bytes:
    return hashlib.sha384(ZERO + hashlib.sha384(b"".join(parts)).digest()).digest()


def _sections(path: Path) -> list[tuple[int, bytes]]:
    """Independent parse: walk the section headers from the end of the 548-byte header."""
    data, position, out = path.read_bytes(), 548, []
    while position < len(data):
        kind, _flags, size = struct.unpack(">HHQ", data[position : position + 12])
        out.append((kind, data[position + 12 : position + 12 + size]))
        position += 12 + size
    return out


def test_written_layout_crc_and_measurements(tmp_path):
    path = tmp_path / "x.eif"
    write_eif(path, nitro_cli_sections(b"KERNEL", " console=ttyS0 \n", {"ImageName": "x"}, [b"boot", b"app1", b"app2"]))
    data = path.read_bytes()
    magic, version, flags, mem, cpus, reserved, count, *rest = HEADER.unpack(data[:548])
    assert (magic, version, flags, mem, cpus, reserved, count) == (b".eif", 4, 0, 1 << 30, 2, 0, 6)
    sections = _sections(path)
    assert [kind for kind, _ in sections] == [1, 2, 5, 3, 3, 3]
    assert sections[1][1] == b"console=ttyS0" and sections[2][1] == b'{"ImageName":"x"}'
    offsets, sizes = rest[:32], rest[32:64]
    assert offsets[:6] == [548, 566, 591, 620, 636, 652] and sizes[:6] == [6, 13, 17, 4, 4, 4]
    assert rest[-1] == zlib.crc32(data[:544] + data[548:])
    info = read_eif(path)
    assert info.crc_ok and info.file_size == len(data)
    assert info.measurements.pcr0 == _pcr(b"KERNEL", b"console=ttyS0", b"boot", b"app1", b"app2")
    assert info.measurements.pcr1 == _pcr(b"KERNEL", b"console=ttyS0", b"boot")
    assert info.measurements.pcr2 == _pcr(b"app1", b"app2")
    assert info.measurements.pcr8 is None


def test_metadata_does_not_change_pcrs_but_changes_crc(tmp_path):
    one, two = tmp_path / "1.eif", tmp_path / "2.eif"
    write_eif(one, nitro_cli_sections(b"k", "c", {"BuildTime": "1"}, [b"b", b"a"]))
    write_eif(two, nitro_cli_sections(b"k", "c", {"BuildTime": "2"}, [b"b", b"a"]))
    first, second = read_eif(one), read_eif(two)
    assert first.measurements == second.measurements
    assert first.stored_crc != second.stored_crc and first.crc_ok and second.crc_ok


def test_any_flipped_byte_fails_the_crc(tmp_path):
    path = tmp_path / "x.eif"
    write_eif(path, nitro_cli_sections(b"kernel", "cmdline", {"ImageName": "x"}, [b"boot", b"application"]))
    original = path.read_bytes()
    for position in [*range(28), *range(548, len(original))]:  # header fields and every section byte
        tampered = bytearray(original)
        tampered[position] ^= 0x01
        path.write_bytes(bytes(tampered))
        try:
            info = read_eif(path)
        except EifError:
            continue  # structural damage is refused outright
        assert not info.crc_ok, position
        assert describe_eif(info)["CheckCRC"] is False


@pytest.mark.parametrize(
    ("offset", "value", "field"),
    [
        (0, b"EIF.", "magic"),
        (4, b"\x00\x05", "version"),
        (26, b"\x00\x00", "num_sections"),
        (26, b"\x00\x21", "num_sections"),
        (28, b"\x00" * 8, "section_offsets[0]"),
        (284, b"\x00" * 8, "section_sizes[0]"),
        (548, b"\x00\x09", "section 0"),
    ],
)
def test_malformed_header_is_refused_naming_the_field(tmp_path, offset, value, field):
    path = tmp_path / "x.eif"
    write_eif(path, nitro_cli_sections(b"kernel", "cmdline", {}, [b"boot", b"app"]))
    data = bytearray(path.read_bytes())
    data[offset : offset + len(value)] = value
    path.write_bytes(bytes(data))
    with pytest.raises(EifError) as caught:
        read_eif(path)
    assert caught.value.field == field


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "x.eif"
    write_eif(path, nitro_cli_sections(b"kernel", "cmdline", {}, [b"boot", b"app"]))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(EifError, match="truncated"):
        read_eif(path)


def _signing_certificate() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "signer")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA384())
    )


def test_signature_section_yields_pcr8(tmp_path, sim):
    cert = _signing_certificate()
    pem = cert.public_bytes(Encoding.PEM)
    # serde_cbor encodes Vec<u8> as arrays of integers; the signature content is not checked here.
    signature = cbor2.dumps([{"signing_certificate": list(pem), "signature": list(b"\x84")}])
    path = tmp_path / "signed.eif"
    write_eif(path, nitro_cli_sections(b"k", "c", {}, [b"b", b"a"], signature=signature))
    info = read_eif(path)
    assert info.sections[-1][0] == SectionType.SIGNATURE
    assert info.measurements.pcr8 == _pcr(cert.public_bytes(Encoding.DER))
    assert describe_eif(info)["IsSigned"] is True and "PCR8" in describe_eif(info)["Measurements"]
    cert_path = tmp_path / "cert.pem"
    cert_path.write_bytes(pem)
    assert json.loads(sim("pcr", "--signing-certificate", str(cert_path)).stdout) == {
        "PCR8": info.measurements.pcr8.hex()
    }


def test_pcr_of_a_file(tmp_path, sim):
    blob = tmp_path / "blob"
    blob.write_bytes(b"measure me")
    result = sim("pcr", "--input", str(blob))
    assert result.code == 0 and result.stdout == f'{{\n  "PCR": "{_pcr(b"measure me").hex()}"\n}}\n'


def test_streamed_sections_equal_in_memory_sections(tmp_path):
    ramdisk = tmp_path / "ramdisk"
    ramdisk.write_bytes(b"r" * 3_000_000)  # larger than one read chunk
    write_eif(tmp_path / "a.eif", [Section(SectionType.KERNEL, b"k"), Section(SectionType.RAMDISK, ramdisk)])
    write_eif(tmp_path / "b.eif", [Section(SectionType.KERNEL, b"k"), Section(SectionType.RAMDISK, b"r" * 3_000_000)])
    assert (tmp_path / "a.eif").read_bytes() == (tmp_path / "b.eif").read_bytes()


def test_cpio_roundtrip():
    entries = [
        cpio.Entry("dir", 0o40755),
        cpio.Entry("dir/file", 0o100644, b"hello", uid=1, gid=2),
        cpio.Entry("link", 0o120777, b"dir/file"),
        cpio.Entry("dev", 0o20600, rdev_major=5, rdev_minor=1),
    ]
    out = io.BytesIO()
    writer = cpio.Writer(out)
    for entry in entries:
        writer.add(entry)
    writer.close()
    data = out.getvalue()
    assert len(data) % 512 == 0 and data[:6] == b"070701"
    assert list(cpio.read_entries(data)) == entries


def test_app_ramdisk_is_deterministic_and_pcr1_is_constant(tmp_path):
    metadata = {"BuildTime": "now"}
    one = build_eif(
        rootfs_tar(tmp_path / "1.tar", APP_FILES), tmp_path / "1.eif", command=["/bin/app"], env=[], metadata=metadata
    )
    # Same files, other member order and timestamps: same application measurement.
    two = build_eif(
        rootfs_tar(tmp_path / "2.tar", APP_FILES, mtime=12345, reverse=True),
        tmp_path / "2.eif",
        command=["/bin/app"],
        env=[],
        metadata={"BuildTime": "later"},
    )
    other = build_eif(
        rootfs_tar(tmp_path / "3.tar", {**APP_FILES, "etc/app.conf": b"answer=43\n"}),
        tmp_path / "3.eif",
        command=["/bin/app"],
        env=[],
        metadata=metadata,
    )
    assert one == two
    assert other.pcr1 == one.pcr1 and other.pcr2 != one.pcr2 and other.pcr0 != one.pcr0
    info = read_eif(tmp_path / "1.eif")
    sections = _sections(tmp_path / "1.eif")
    assert sections[0][1] == STAND_IN_KERNEL and sections[1][1] == X86_64_CMDLINE.encode()
    assert sections[3][1] == bootstrap_ramdisk() and info.crc_ok
    names = [entry.name for entry in cpio.read_entries(sections[4][1])]
    assert names == ["rootfs", "rootfs/bin", "rootfs/bin/app", "rootfs/etc", "rootfs/etc/app.conf", "cmd", "env"]
    application = read_application(tmp_path / "1.eif")
    assert application.command == ["/bin/app"] and application.env == []


def test_describe_eif_matches_golden(tmp_path, sim):
    expected = golden("describe-eif.stdout")
    described = json.loads(expected)
    meta = described["Metadata"]
    metadata = {
        "ImageName": described["ImageName"],
        "ImageVersion": described["ImageVersion"],
        "BuildMetadata": {
            key: meta[key] for key in ("BuildTime", "BuildTool", "BuildToolVersion", "OperatingSystem", "KernelVersion")
        },
        "DockerInfo": meta["DockerInfo"],
        "CustomMetadata": None,
    }
    path = tmp_path / "payments-app.eif"
    write_eif(path, nitro_cli_sections(STAND_IN_KERNEL, X86_64_CMDLINE, metadata, [bootstrap_ramdisk(), b"app"]))
    result = sim("describe-eif", "--eif-path", str(path))
    assert result.code == 0 and result.stderr == ""
    ours = read_eif(path).measurements
    # Only the PCRs differ: the golden EIF holds AWS's kernel and the payments-app filesystem.
    for name, value in (("PCR0", ours.pcr0), ("PCR1", ours.pcr1), ("PCR2", ours.pcr2)):
        expected = expected.replace(described["Measurements"][name], value.hex())
    assert result.stdout == expected


def test_describe_eif_flattens_custom_metadata(tmp_path, sim):
    path = tmp_path / "x.eif"
    metadata = {
        "ImageName": "x",
        "ImageVersion": "1",
        "BuildMetadata": {"BuildTime": "t"},
        "DockerInfo": {},
        "CustomMetadata": {"Team": "k3sdaas"},
    }
    write_eif(path, nitro_cli_sections(b"k", "c", metadata, [b"b", b"a"]))
    described = json.loads(sim("describe-eif", "--eif-path", str(path)).stdout)
    assert list(described["Metadata"])[-2:] == ["DockerInfo", "Team"] and described["Metadata"]["Team"] == "k3sdaas"


def test_describe_eif_errors(tmp_path, sim):
    missing = sim("describe-eif", "--eif-path", str(tmp_path / "missing.eif"))
    assert missing.code == 19 and missing.stdout == ""
    assert f"File: '{tmp_path / 'missing.eif'}', failing operation: 'Open'." in missing.stderr
    garbage = tmp_path / "garbage.eif"
    garbage.write_bytes(b"not an eif" * 100)
    result = sim("describe-eif", "--eif-path", str(garbage))
    assert result.code == 35 and result.stderr.startswith("[ E35 ] EIF file parsing error.")
