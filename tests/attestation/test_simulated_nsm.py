"""The simulated NSM: same request/response CBOR as /dev/nsm, documents in the exact AWS layout."""

from __future__ import annotations

import ctypes
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from cryptography import x509

from k3sdaas.attestation import ChainError, PolicyError, SignatureError, verify_attestation
from k3sdaas.attestation.cose import decode_sign1
from k3sdaas.attestation.document import FIELD_ORDER, parse_payload
from k3sdaas.attestation.nsm import (
    NSM_IOCTL_REQUEST,
    DeviceTransport,
    NsmClient,
    NsmError,
    SocketTransport,
    Unavailable,
    _NsmMessage,
    open_transport,
)
from k3sdaas.errors import InvalidInput
from k3sdaas.nitro.measure import ZERO_PCR, extend, measure_string
from k3sdaas_localnet.nitro.nsm_sim import NsmServer
from k3sdaas_localnet.nitro.pki import load_or_create

from .conftest import INSTANCE_ID, MODULE_ID


def _certs(data: bytes) -> list[x509.Certificate]:
    doc = parse_payload(decode_sign1(data).payload)
    return [x509.load_der_x509_certificate(der) for der in [*doc.cabundle, doc.certificate]]


def _shape(cert: x509.Certificate) -> tuple:
    return (
        [attr.oid for attr in cert.subject],
        [(ext.oid, ext.critical) for ext in cert.extensions],
        cert.signature_algorithm_oid,
        cert.public_key().curve.name,
        cert.version,
    )


def test_document_layout_matches_real_aws_document(make_nsm, valid_doc):
    simulated = NsmClient(make_nsm()).attestation(nonce=b"n" * 256)
    real, sim = cbor2.loads(valid_doc.data), cbor2.loads(simulated)
    assert simulated[:7] == valid_doc.data[:7] == bytes.fromhex("8444a1013822a0")
    assert simulated[7] == 0x59 and len(sim[3]) == 96 and sim[1] == {}
    real_payload, sim_payload = cbor2.loads(real[2]), cbor2.loads(sim[2])
    assert list(sim_payload) == list(real_payload) == list(FIELD_ORDER)
    for name in FIELD_ORDER:
        assert type(sim_payload[name]) is type(real_payload[name]) or name in ("public_key", "user_data"), name
    assert list(sim_payload["pcrs"]) == list(range(16)) and {len(v) for v in sim_payload["pcrs"].values()} == {48}
    assert len(sim_payload["cabundle"]) == 4
    assert sim[2][sim[2].index(b"timestamp") + 9] == 0x1B  # uint64 ms, as AWS
    assert decode_sign1(simulated).encode() == simulated
    real_certs, sim_certs = _certs(valid_doc.data), _certs(simulated)
    for position, (real_cert, sim_cert) in enumerate(zip(real_certs, sim_certs, strict=True)):
        assert _shape(sim_cert) == _shape(real_cert), position
        if position:  # the root's lifetime is ours; every issued certificate lives exactly as long as AWS's
            real_life = real_cert.not_valid_after_utc - real_cert.not_valid_before_utc
            sim_life = sim_cert.not_valid_after_utc - sim_cert.not_valid_before_utc
            assert sim_life == real_life or position == 2, position  # zonal lifetimes vary at AWS too
    leaf = sim_certs[-1]
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(hours=3, seconds=3)


def test_leaf_serial_follows_aws_scheme(valid_doc, make_nsm):
    real_leaf = _certs(valid_doc.data)[-1]
    assert real_leaf.serial_number == (0x0183D09086C24190 << 64) | 1665651482
    sim_doc = parse_payload(decode_sign1(NsmClient(make_nsm()).attestation()).payload)
    sim_leaf = x509.load_der_x509_certificate(sim_doc.certificate)
    assert sim_leaf.serial_number == (0x19AB2C3D4E5F601 << 64) | (sim_doc.timestamp // 1000)


def test_simulated_document_verifies_only_with_the_test_root(make_nsm, test_pki, image_pcrs):
    client = NsmClient(make_nsm())
    data = client.attestation(public_key=b"\x04" + b"k" * 96, user_data=b"tls-sha256", nonce=b"fresh")
    result = verify_attestation(data, root=test_pki.root.cert, nonce=b"fresh", public_key=b"\x04" + b"k" * 96)
    assert result.document.module_id == MODULE_ID
    assert [result.document.pcrs[i] for i in (0, 1, 2)] == list(image_pcrs)
    assert result.document.pcrs[4] == measure_string(INSTANCE_ID)
    with pytest.raises(ChainError, match=r"cabundle\[0\] is not the pinned root"):
        verify_attestation(data)
    tampered = bytearray(data)
    tampered[-1] ^= 1
    with pytest.raises(SignatureError):
        verify_attestation(bytes(tampered), root=test_pki.root.cert)


def test_simulated_document_expires_with_its_leaf(make_nsm, test_pki):
    data = NsmClient(make_nsm()).attestation()
    later = datetime.now(UTC) + timedelta(hours=3, minutes=1)
    with pytest.raises(ChainError, match="certificate is not valid at"):
        verify_attestation(data, root=test_pki.root.cert, at=later)


def test_debug_mode_zeroes_image_pcrs(make_nsm, test_pki):
    data = NsmClient(make_nsm(debug=True)).attestation()
    with pytest.raises(PolicyError, match="PCR0 is all zero"):
        verify_attestation(data, root=test_pki.root.cert)
    pcrs = parse_payload(decode_sign1(data).payload).pcrs
    assert [pcrs[i] for i in (0, 1, 2, 8)] == [ZERO_PCR] * 4 and pcrs[4] != ZERO_PCR


class Recording:
    def __init__(self, inner) -> None:
        self.inner, self.requests = inner, []

    def exchange(self, request: bytes) -> bytes:
        self.requests.append(request)
        return self.inner.exchange(request)


def test_request_shapes_are_the_nsm_api_enum(make_nsm):
    transport = Recording(make_nsm())
    client = NsmClient(transport)
    client.attestation(nonce=b"abc")
    client.describe_nsm()
    client.describe_pcr(3)
    client.extend_pcr(16, b"x")
    client.lock_pcr(16)
    client.lock_pcrs(17)
    client.get_random()
    assert transport.requests == [
        cbor2.dumps({"Attestation": {"user_data": None, "nonce": b"abc", "public_key": None}}),
        cbor2.dumps("DescribeNSM"),
        cbor2.dumps({"DescribePCR": {"index": 3}}),
        cbor2.dumps({"ExtendPCR": {"index": 16, "data": b"x"}}),
        cbor2.dumps({"LockPCR": {"index": 16}}),
        cbor2.dumps({"LockPCRs": {"range": 17}}),
        cbor2.dumps("GetRandom"),
    ]


def test_pcr_bank_semantics(make_nsm, test_pki):
    client = NsmClient(make_nsm())
    description = client.describe_nsm()
    assert (description.module_id, description.max_pcrs, description.digest) == (MODULE_ID, 32, "SHA384")
    assert description.locked_pcrs == list(range(16))
    assert client.extend_pcr(16, b"config") == extend(ZERO_PCR, b"config")
    assert client.describe_pcr(16) == (False, extend(ZERO_PCR, b"config"))
    for call, code in [
        (lambda: client.extend_pcr(4, b"x"), "ReadOnlyIndex"),
        (lambda: client.describe_pcr(32), "InvalidIndex"),
        (lambda: client.lock_pcrs(33), "InvalidIndex"),
    ]:
        with pytest.raises(NsmError) as caught:
            call()
        assert caught.value.code == code
    client.lock_pcr(16)
    with pytest.raises(NsmError, match="ReadOnlyIndex"):
        client.extend_pcr(16, b"more")
    pcrs = verify_attestation(client.attestation(), root=test_pki.root.cert).document.pcrs
    assert sorted(pcrs) == list(range(17)) and pcrs[16] == extend(ZERO_PCR, b"config")
    first, second = client.get_random(), client.get_random()
    assert len(first) == 256 and first != second


def test_input_limits(make_nsm):
    nsm = make_nsm()
    with pytest.raises(InvalidInput, match="user_data"):
        NsmClient(nsm).attestation(user_data=b"u" * 513)
    raw = cbor2.loads(nsm.exchange(cbor2.dumps({"Attestation": {"nonce": b"n" * 513}})))
    assert raw == {"Error": "InputTooLarge"}
    assert cbor2.loads(nsm.exchange(b"\xff\x00")) == {"Error": "InvalidArgument"}
    assert cbor2.loads(nsm.exchange(cbor2.dumps({"Reboot": {}}))) == {"Error": "InvalidOperation"}
    assert cbor2.loads(nsm.exchange(b"\x00" * 0x1001)) == {"Error": "InputTooLarge"}


@pytest.mark.parametrize("address", ["unix", "tcp:127.0.0.1:0"])
def test_socket_transport_reaches_the_simulator(make_nsm, test_pki, tmp_path, address):
    address = str(tmp_path / "nsm.sock") if address == "unix" else address
    with NsmServer(make_nsm(), address) as server:
        client = NsmClient(open_transport({"K3SDAAS_NSM_SOCKET": server.bound_address}))
        assert isinstance(client.transport, SocketTransport)
        data = client.attestation(nonce=b"over-socket")
        assert verify_attestation(data, root=test_pki.root.cert, nonce=b"over-socket")


def test_without_device_or_socket_there_is_no_nsm():
    if Path("/dev/nsm").exists():
        pytest.skip("running inside a real enclave")
    with pytest.raises(Unavailable, match="/dev/nsm"):
        open_transport({})


def test_persistent_pki_keeps_its_root_and_renews_intermediates(tmp_path):
    now = datetime.now(UTC)
    first = load_or_create(tmp_path, INSTANCE_ID, now)
    assert oct((tmp_path / "root.key").stat().st_mode & 0o777) == "0o600"
    same = load_or_create(tmp_path, INSTANCE_ID, now + timedelta(minutes=1))
    assert same.cabundle() == first.cabundle()
    renewed = load_or_create(tmp_path, INSTANCE_ID, now + timedelta(hours=22))
    assert renewed.root.der == first.root.der and renewed.instance.der != first.instance.der
    assert renewed.valid_until() > now + timedelta(hours=25)


def test_device_transport_reports_a_device_that_is_not_an_nsm():
    # /dev/null accepts open() but not the NSM ioctl: the client must say so instead of hanging or crashing.
    with pytest.raises(Unavailable, match="NSM ioctl on /dev/null failed"):
        NsmClient(DeviceTransport("/dev/null")).describe_nsm()


def test_ioctl_request_number_and_message_layout():
    assert NSM_IOCTL_REQUEST == 0xC0200A00
    assert ctypes.sizeof(_NsmMessage) == 32  # two struct iovec


class Answering:
    """A transport that answers every request with one fixed CBOR value."""

    def __init__(self, response: object) -> None:
        self.response = response

    def exchange(self, request: bytes) -> bytes:
        return cbor2.dumps(self.response)


@pytest.mark.parametrize(
    ("response", "call"),
    [
        ({"Attestation": {"document": "text"}}, lambda c: c.attestation()),
        ({"DescribeNSM": {"module_id": "i-1"}}, lambda c: c.describe_nsm()),
        ({"DescribePCR": {"lock": 1, "data": b""}}, lambda c: c.describe_pcr(0)),
        ({"GetRandom": None}, lambda c: c.get_random()),
        (["ExtendPCR"], lambda c: c.extend_pcr(16, b"x")),
        ("LockPCRs", lambda c: c.lock_pcr(16)),
    ],
)
def test_malformed_responses_are_invalid(response, call):
    with pytest.raises(NsmError, match="InvalidResponse"):
        call(NsmClient(Answering(response)))
