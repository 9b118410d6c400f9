"""Client for the Nitro Secure Module: CBOR requests over /dev/nsm, or over a socket to a simulated NSM.

Product code builds one ``NsmClient`` from ``open_transport()``; inside a real enclave that is the
``/dev/nsm`` ioctl, elsewhere ``K3SDAAS_NSM_SOCKET`` points at a simulator speaking the same CBOR.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import cbor2

from k3sdaas.attestation.cose import loads_exact
from k3sdaas.attestation.document import MAX_NONCE_BYTES, MAX_PUBLIC_KEY_BYTES, MAX_USER_DATA_BYTES
from k3sdaas.errors import InvalidInput, K3sdaasError, Unavailable

NSM_DEVICE = "/dev/nsm"
# _IOWR(0x0A, 0, struct nsm_message) with sizeof(struct nsm_message) == 32 (two iovecs) on 64-bit Linux.
NSM_IOCTL_REQUEST = (3 << 30) | (32 << 16) | (0x0A << 8) | 0
NSM_REQUEST_MAX = 0x1000
NSM_RESPONSE_MAX = 0x3000
NSM_SOCKET_ENV = "K3SDAAS_NSM_SOCKET"
FRAME_HEADER = struct.Struct(">I")


class NsmError(K3sdaasError):
    """The NSM answered with an error code (InvalidIndex, ReadOnlyIndex, InputTooLarge, ...)."""

    def __init__(self, code: str) -> None:
        super().__init__(f"NSM error: {code}")
        self.code = code


class NsmTransport(Protocol):
    def exchange(self, request: bytes) -> bytes:
        """Send one CBOR request, return the CBOR response."""
        ...


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _NsmMessage(ctypes.Structure):
    _fields_ = [("request", _IoVec), ("response", _IoVec)]


class DeviceTransport:
    """The real device: one ioctl per request; the driver rewrites response.iov_len to the bytes written."""

    def __init__(self, path: str = NSM_DEVICE) -> None:
        self.path = path

    def exchange(self, request: bytes) -> bytes:
        if len(request) > NSM_REQUEST_MAX:
            raise NsmError("InputTooLarge")
        request_buffer = ctypes.create_string_buffer(request, len(request))
        response_buffer = ctypes.create_string_buffer(NSM_RESPONSE_MAX)
        message = _NsmMessage(
            _IoVec(ctypes.cast(request_buffer, ctypes.c_void_p), len(request)),
            _IoVec(ctypes.cast(response_buffer, ctypes.c_void_p), NSM_RESPONSE_MAX),
        )
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
            try:
                fcntl.ioctl(fd, NSM_IOCTL_REQUEST, message)
            finally:
                os.close(fd)
        except OSError as exc:
            raise Unavailable(f"NSM ioctl on {self.path} failed: {exc.strerror}") from exc
        return response_buffer.raw[: message.response.iov_len]


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = conn.recv(size - len(chunks))
        if not chunk:
            raise Unavailable("NSM socket closed mid-message")
        chunks += chunk
    return bytes(chunks)


def send_frame(conn: socket.socket, payload: bytes) -> None:
    conn.sendall(FRAME_HEADER.pack(len(payload)) + payload)


def recv_frame(conn: socket.socket, limit: int) -> bytes:
    (size,) = FRAME_HEADER.unpack(_recv_exact(conn, FRAME_HEADER.size))
    if size > limit:
        raise InvalidInput(f"NSM frame of {size} bytes exceeds {limit}", field="request")
    return _recv_exact(conn, size)


class SocketTransport:
    """Length-prefixed CBOR frames to a simulated NSM; address is a Unix socket path or tcp:HOST:PORT."""

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        self.address = address
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        if self.address.startswith("tcp:"):
            host, _, port = self.address[4:].rpartition(":")
            return socket.create_connection((host, int(port)), timeout=self.timeout)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(self.timeout)
        conn.connect(self.address)
        return conn

    def exchange(self, request: bytes) -> bytes:
        if len(request) > NSM_REQUEST_MAX:
            raise NsmError("InputTooLarge")
        try:
            with self._connect() as conn:
                send_frame(conn, request)
                return recv_frame(conn, NSM_RESPONSE_MAX)
        except OSError as exc:
            raise Unavailable(f"NSM socket {self.address}: {exc}") from exc


def open_transport(env: Mapping[str, str] | None = None) -> NsmTransport:
    """The simulator when K3SDAAS_NSM_SOCKET is set, otherwise the enclave's /dev/nsm."""
    env = os.environ if env is None else env
    if env.get(NSM_SOCKET_ENV):
        return SocketTransport(env[NSM_SOCKET_ENV])
    if os.path.exists(NSM_DEVICE):
        return DeviceTransport()
    raise Unavailable(f"no NSM: {NSM_DEVICE} does not exist and {NSM_SOCKET_ENV} is not set")


@dataclass(frozen=True)
class NsmDescription:
    version: tuple[int, ...]
    module_id: str
    max_pcrs: int
    locked_pcrs: list[int]
    digest: str


def _limit(name: str, value: bytes | None, limit: int) -> bytes | None:
    if value is not None and len(value) > limit:
        raise InvalidInput(f"{name} is {len(value)} bytes, the NSM accepts at most {limit}", field=name)
    return value


def _field(body: Any, name: str, kind: type) -> Any:
    """One typed field of a response body; anything else means the NSM answered nonsense."""
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, kind):
        raise NsmError("InvalidResponse")
    return value


class NsmClient:
    """Typed NSM API (the aws-nitro-enclaves-nsm-api Request/Response enum, serde's external tagging)."""

    def __init__(self, transport: NsmTransport) -> None:
        self.transport = transport

    def call(self, request: Any, expect: str) -> Any:
        raw = self.transport.exchange(cbor2.dumps(request))
        response = loads_exact(raw, "NSM response", NsmError)
        if isinstance(response, dict) and "Error" in response:
            raise NsmError(str(response["Error"]))
        if response == expect:  # unit variants come back as bare text
            return None
        if not isinstance(response, dict) or expect not in response:
            raise NsmError("InvalidResponse")
        return response[expect]

    def attestation(
        self, *, user_data: bytes | None = None, nonce: bytes | None = None, public_key: bytes | None = None
    ) -> bytes:
        body = {
            "user_data": _limit("user_data", user_data, MAX_USER_DATA_BYTES),
            "nonce": _limit("nonce", nonce, MAX_NONCE_BYTES),
            "public_key": _limit("public_key", public_key, MAX_PUBLIC_KEY_BYTES),
        }
        return _field(self.call({"Attestation": body}, "Attestation"), "document", bytes)

    def describe_nsm(self) -> NsmDescription:
        info = self.call("DescribeNSM", "DescribeNSM")
        return NsmDescription(
            version=tuple(_field(info, f"version_{part}", int) for part in ("major", "minor", "patch")),
            module_id=_field(info, "module_id", str),
            max_pcrs=_field(info, "max_pcrs", int),
            locked_pcrs=list(_field(info, "locked_pcrs", list)),
            digest=_field(info, "digest", str),
        )

    def describe_pcr(self, index: int) -> tuple[bool, bytes]:
        info = self.call({"DescribePCR": {"index": index}}, "DescribePCR")
        return _field(info, "lock", bool), _field(info, "data", bytes)

    def extend_pcr(self, index: int, data: bytes) -> bytes:
        return _field(self.call({"ExtendPCR": {"index": index, "data": data}}, "ExtendPCR"), "data", bytes)

    def lock_pcr(self, index: int) -> None:
        self.call({"LockPCR": {"index": index}}, "LockPCR")

    def lock_pcrs(self, range_: int) -> None:
        self.call({"LockPCRs": {"range": range_}}, "LockPCRs")

    def get_random(self) -> bytes:
        return _field(self.call("GetRandom", "GetRandom"), "random", bytes)
