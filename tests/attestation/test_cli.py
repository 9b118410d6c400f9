"""k3sdaas-attest verify: exit 0 with a JSON summary, 1 with a one-line reason."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from k3sdaas.attestation.cli import main
from k3sdaas.attestation.cose import decode_sign1
from k3sdaas.attestation.document import parse_payload

from .conftest import FIXTURES, MODULE_ID

VALID = FIXTURES / "valid-attestation-doc-bytes"
VALID_AT = "2022-10-13T08:58:02.136Z"
PCR0 = "f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d5599936332687e6f66fc890ac8cf150142d8b"


def _run(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "k3sdaas.attestation.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_real_document_with_aws_root_prints_summary():
    nonce = parse_payload(decode_sign1(VALID.read_bytes()).payload).nonce.hex()
    proc = _run(["verify", str(VALID), "--at", VALID_AT, "--pcr", f"0={PCR0}", "--nonce", nonce])
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["module_id"] == "i-020b6af9246d90e92-enc0183d09086c24190"
    assert summary["timestamp"] == 1665651482136 and summary["digest"] == "SHA384"
    assert summary["pcrs"]["0"] == PCR0 and len(summary["pcrs"]) == 16
    assert summary["nonce"] == nonce and summary["public_key"] is None and summary["user_data"] is None
    assert summary["chain"][-1] == "CN=aws.nitro-enclaves,OU=AWS,O=Amazon,C=US"
    assert proc.stderr == b""


def test_base64_from_stdin_with_debug_allowed():
    text = (FIXTURES / "valid-attestation-doc-base64").read_bytes()
    refused = _run(["verify", "-", "--at", "2023-09-18T15:03:30.860Z"], stdin=text)
    assert refused.returncode == 1
    assert refused.stderr.decode() == "refused: PCR0 is all zero (debug-mode enclave) and debug is not allowed\n"
    accepted = _run(["verify", "-", "--at", "2023-09-18T15:03:30.860Z", "--allow-debug"], stdin=text)
    assert accepted.returncode == 0
    assert json.loads(accepted.stdout)["user_data"].startswith("3059301306072a8648ce3d0201")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--pcr", "1=" + "00" * 48], "refused: PCR1 is bcdf05fe"),
        ([], "refused: certificate is not valid at"),  # default time is now
        (["--nonce", "00"], "refused: nonce does not match"),
        (["--public-key", "00"], "refused: public_key is absent"),
    ],
)
def test_refusals_exit_1_with_one_line(capsys, args, reason):
    at = [] if not args else ["--at", VALID_AT]
    assert main(["verify", str(VALID), *at, *args]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(reason) and err.count("\n") == 1


def test_test_root_option(tmp_path, capsys, make_nsm, test_pki):
    doc = tmp_path / "doc.b64"
    doc.write_bytes(base64.b64encode(make_nsm().attest(nonce=b"n")))
    root = tmp_path / "root.pem"
    root.write_bytes(test_pki.root.cert.public_bytes(Encoding.PEM))
    assert main(["verify", str(doc), "--root", str(root), "--nonce", b"n".hex()]) == 0
    assert json.loads(capsys.readouterr().out)["module_id"] == MODULE_ID
    assert main(["verify", str(doc)]) == 1
    assert capsys.readouterr().err == "refused: cabundle[0] is not the pinned root\n"


def test_unreadable_inputs(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "missing")]) == 1
    assert "cannot read document" in capsys.readouterr().err
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a document!")
    assert main(["verify", str(garbage)]) == 1
    assert capsys.readouterr().err == "refused: document is neither raw COSE_Sign1 bytes nor base64\n"
    bad_root = tmp_path / "root.pem"
    bad_root.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert main(["verify", str(VALID), "--root", str(bad_root)]) == 1
    assert "is not a PEM or DER certificate" in capsys.readouterr().err


@pytest.mark.parametrize(
    "bad",
    [
        ["--pcr", "0=zz"],
        ["--pcr", "x"],
        ["--at", "yesterday"],
        ["--at", "2022-10-13T08:58:02"],
        ["--pcr", "2=" + "00" * 47],
    ],
)
def test_usage_errors_exit_1_with_one_line(bad):
    proc = _run(["verify", str(VALID), *bad])
    assert proc.returncode == 1 and proc.stderr.count(b"\n") == 1 and b"usage:" not in proc.stderr
