"""nitro_enclave with a signed EIF: a new signing certificate changes PCR8 alone, and the running enclave
is replaced by one that runs the re-signed EIF (drift used to compare PCR0 only and kept the old one)."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def signing_pair(folder: Path, name: str) -> dict[str, str]:
    """A self-signed P-384 certificate and its key, the kind nitro-cli's image signing takes."""
    key = ec.generate_private_key(ec.SECP384R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA384()))
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return {"signing_certificate": str(cert_path), "private_key": str(key_path)}


def test_a_new_signing_certificate_replaces_the_enclave(steps, sim, tiny_image, tmp_path: Path) -> None:
    image = tiny_image("signed")
    run = {"state": "running", "docker_uri": image, "memory_mib": 256}
    first, resigned = steps(dict(run, **signing_pair(tmp_path, "a")), dict(run, **signing_pair(tmp_path, "a2")))
    assert first.changed and first.result["actions"] == ["build", "run"], first.output
    assert "PCR8" in first.result["pcrs"] and first.result["enclave"]["pcrs"]["PCR8"] == first.result["pcrs"]["PCR8"]
    # a2 is another certificate: the EIF is re-signed and the enclave replaced; PCR0-2 stay
    assert resigned.result["build_reason"] == "signing certificate changed"
    assert resigned.result["drift"] == ["PCR8"], resigned.output
    assert resigned.result["actions"] == ["build", "terminate", "run"]
    before, after = first.result["enclave"]["pcrs"], resigned.result["enclave"]["pcrs"]
    assert {name: before[name] for name in ("PCR0", "PCR1", "PCR2")} == {
        name: after[name] for name in ("PCR0", "PCR1", "PCR2")}
    assert before["PCR8"] != after["PCR8"]
    assert [item["EnclaveID"] for item in sim.describe()] == [resigned.result["enclave"]["enclave_id"]]
