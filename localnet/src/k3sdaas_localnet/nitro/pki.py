"""A test CA hierarchy shaped exactly like AWS's: root -> regional -> zonal -> instance -> per-document leaf.

Subjects (attribute order included), extensions, criticality, key type and validity periods mirror the
real chains in tests/fixtures/nitro/attestation; only the names, keys and CRL URLs are ours.
"""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REGION = "us-east-1"
ROOT_CN = "k3sdaas-test.nitro-enclaves"
ROOT_LIFETIME = timedelta(days=30 * 365)
REGIONAL_LIFETIME = timedelta(days=20, hours=1)
ZONAL_LIFETIME = timedelta(days=5, hours=14)
INSTANCE_LIFETIME = timedelta(days=1)
LEAF_BACKDATE = timedelta(seconds=3)
LEAF_LIFETIME = timedelta(hours=3, seconds=3)  # real leaves: doc time - 3 s .. doc time + 3 h
CA_LEVELS = ("root", "regional", "zonal", "instance")
Extensions = list[tuple[x509.ExtensionType, bool]]


def _name(*parts: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts])


def _key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


CA_KEY_USAGE = _key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def issue(
    subject: x509.Name,
    issuer: Issued | None,
    not_before: datetime,
    lifetime: timedelta,
    extensions: Extensions,
    *,
    key: ec.EllipticCurvePrivateKey | None = None,
    serial: int | None = None,
) -> Issued:
    """Sign a P-384 certificate with ecdsa-with-SHA384; ``issuer=None`` makes it self-signed."""
    key = key or ec.generate_private_key(ec.SECP384R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + lifetime)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return Issued(builder.sign(issuer.key if issuer else key, hashes.SHA384()), key)


def _issue_ca(
    subject: x509.Name,
    issuer: Issued | None,
    not_before: datetime,
    lifetime: timedelta,
    path_length: int | None,
    *,
    key_ids: bool,
    crl: bool,
) -> Issued:
    key = ec.generate_private_key(ec.SECP384R1())
    extensions: Extensions = [(x509.BasicConstraints(ca=True, path_length=path_length), True)]
    if issuer is not None and key_ids:
        extensions.append((x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False))
    if key_ids:
        extensions.append((x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False))
    extensions.append((CA_KEY_USAGE if path_length != 0 else _key_usage(key_cert_sign=True), True))
    if crl:
        url = f"http://crl.k3sdaas-test.invalid/crl/{uuid.uuid4()}.crl"
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)
        extensions.append((x509.CRLDistributionPoints([point]), False))
    return issue(subject, issuer, not_before, lifetime, extensions, key=key)


def issue_root(now: datetime) -> Issued:
    subject = _name(
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.ORGANIZATION_NAME, "Amazon"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "AWS"),
        (NameOID.COMMON_NAME, ROOT_CN),
    )
    return _issue_ca(subject, None, now.replace(microsecond=0), ROOT_LIFETIME, None, key_ids=True, crl=False)


def issue_regional(root: Issued, now: datetime) -> Issued:
    cn = f"{secrets.token_hex(8)}.{REGION}.aws.nitro-enclaves"
    subject = _name(
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.ORGANIZATION_NAME, "Amazon"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "AWS"),
        (NameOID.COMMON_NAME, cn),
    )
    return _issue_ca(subject, root, now.replace(microsecond=0), REGIONAL_LIFETIME, 2, key_ids=True, crl=True)


def issue_zonal(regional: Issued, now: datetime) -> Issued:
    cn = f"{secrets.token_hex(8)}.zonal.{REGION}.aws.nitro-enclaves"
    subject = _name(
        (NameOID.COMMON_NAME, cn),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "AWS"),
        (NameOID.ORGANIZATION_NAME, "Amazon"),
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.STATE_OR_PROVINCE_NAME, "WA"),
        (NameOID.LOCALITY_NAME, "Seattle"),
    )
    return _issue_ca(subject, regional, now.replace(microsecond=0), ZONAL_LIFETIME, 1, key_ids=True, crl=True)


def _instance_style_name(cn: str) -> x509.Name:
    return _name(
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.STATE_OR_PROVINCE_NAME, "Washington"),
        (NameOID.LOCALITY_NAME, "Seattle"),
        (NameOID.ORGANIZATION_NAME, "Amazon"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "AWS"),
        (NameOID.COMMON_NAME, cn),
    )


def issue_instance(zonal: Issued, instance_id: str, now: datetime) -> Issued:
    subject = _instance_style_name(f"{instance_id}.{REGION}.aws.nitro-enclaves")
    key = ec.generate_private_key(ec.SECP384R1())
    extensions: Extensions = [
        (x509.BasicConstraints(ca=True, path_length=0), True),
        (_key_usage(key_cert_sign=True), True),
    ]
    return issue(
        subject,
        zonal,
        now.replace(microsecond=0),
        INSTANCE_LIFETIME,
        extensions,
        key=key,
        serial=int.from_bytes(secrets.token_bytes(20), "big") >> 1,
    )


def issue_leaf(instance: Issued, module_id: str, at: datetime) -> Issued:
    """Per-document leaf; its serial is the enclave slot uid, 32 zero bits and the issue second, as AWS's."""
    not_before = at.replace(microsecond=0) - LEAF_BACKDATE
    _, _, slot = module_id.rpartition("-enc")
    slot_uid = int(slot, 16) if slot and all(c in "0123456789abcdef" for c in slot) else secrets.randbits(60)
    serial = (slot_uid << 64) | int(at.timestamp())
    extensions: Extensions = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (_key_usage(digital_signature=True, content_commitment=True), False),
    ]
    return issue(
        _instance_style_name(f"{module_id}.{REGION}.aws"),
        instance,
        not_before,
        LEAF_LIFETIME,
        extensions,
        serial=serial,
    )


@dataclass(frozen=True)
class SimulatedPki:
    """The four CA levels; cabundle() is what goes into documents (root first)."""

    root: Issued
    regional: Issued
    zonal: Issued
    instance: Issued

    @classmethod
    def generate(cls, instance_id: str, now: datetime) -> SimulatedPki:
        root = issue_root(now)
        return cls.with_root(root, instance_id, now)

    @classmethod
    def with_root(cls, root: Issued, instance_id: str, now: datetime) -> SimulatedPki:
        regional = issue_regional(root, now)
        zonal = issue_zonal(regional, now)
        return cls(root, regional, zonal, issue_instance(zonal, instance_id, now))

    @property
    def instance_id(self) -> str:
        cn = self.instance.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        return str(cn).split(".", 1)[0]

    def cabundle(self) -> list[bytes]:
        return [level.der for level in (self.root, self.regional, self.zonal, self.instance)]

    def valid_until(self) -> datetime:
        return min(level.cert.not_valid_after_utc for level in (self.root, self.regional, self.zonal, self.instance))

    def refreshed(self, now: datetime) -> SimulatedPki:
        """Re-issue the intermediates (keeping the root) when a 3-hour leaf would outlive them."""
        if self.valid_until() >= now + LEAF_LIFETIME + timedelta(minutes=5):
            return self
        return SimulatedPki.with_root(self.root, self.instance_id, now)

    def root_pem(self) -> bytes:
        return self.root.cert.public_bytes(serialization.Encoding.PEM)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for level in CA_LEVELS:
            issued: Issued = getattr(self, level)
            key_pem = issued.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            fd = os.open(directory / f"{level}.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(key_pem)
            (directory / f"{level}.pem").write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))

    @classmethod
    def load(cls, directory: Path) -> SimulatedPki:
        levels = []
        for level in CA_LEVELS:
            cert = x509.load_pem_x509_certificate((directory / f"{level}.pem").read_bytes())
            key = serialization.load_pem_private_key((directory / f"{level}.key").read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            levels.append(Issued(cert, key))
        return cls(*levels)


def load_or_create(directory: Path, instance_id: str, now: datetime) -> SimulatedPki:
    """The simulator's persistent CA: the root survives restarts so verifiers can keep pinning root.pem."""
    if (directory / "root.pem").exists():
        stored = SimulatedPki.load(directory)
        pki = stored if stored.instance_id == instance_id else SimulatedPki.with_root(stored.root, instance_id, now)
        pki = pki.refreshed(now)
        if pki is stored:
            return pki
    else:
        pki = SimulatedPki.generate(instance_id, now)
    pki.save(directory)
    return pki
