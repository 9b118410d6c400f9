"""A simulated Nitro Secure Module: the NSM request/response CBOR, PCR bank and signed documents.

``SimulatedNsm`` implements the same ``exchange(bytes) -> bytes`` transport as /dev/nsm, so
``NsmClient(SimulatedNsm(...))`` in-process and ``NsmClient(SocketTransport(path))`` against
``serve_nsm()`` exercise the product client unchanged.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import cbor2

from k3sdaas.attestation.cose import sign1
from k3sdaas.attestation.document import (
    MAX_NONCE_BYTES,
    MAX_PUBLIC_KEY_BYTES,
    MAX_USER_DATA_BYTES,
    AttestationDocument,
)
from k3sdaas.attestation.nsm import NSM_REQUEST_MAX, recv_frame, send_frame
from k3sdaas.errors import InvalidInput, Unavailable
from k3sdaas.nitro.measure import PCR_BYTES, ZERO_PCR, extend
from k3sdaas_localnet.nitro.pki import SimulatedPki, issue_leaf

MAX_PCRS = 32
BOOT_LOCKED_PCRS = 16  # PCR0..15 are measured at boot and read-only
RANDOM_BYTES = 256


class _NsmFailure(Exception):
    def __init__(self, code: str) -> None:
        self.code = code


def boot_pcrs(
    pcr0: bytes,
    pcr1: bytes,
    pcr2: bytes,
    *,
    instance_pcr: bytes,
    role_pcr: bytes = ZERO_PCR,
    pcr8: bytes = ZERO_PCR,
    debug: bool = False,
) -> dict[int, bytes]:
    """The 16 boot PCRs; a debug-mode enclave reports its image PCRs (0, 1, 2, 8) as zeros."""
    image = {0: pcr0, 1: pcr1, 2: pcr2, 8: pcr8}
    pcrs = dict.fromkeys(range(BOOT_LOCKED_PCRS), ZERO_PCR)
    pcrs.update({index: ZERO_PCR if debug else value for index, value in image.items()})
    pcrs.update({3: role_pcr, 4: instance_pcr})
    return pcrs


class SimulatedNsm:
    def __init__(
        self,
        pki: SimulatedPki | Callable[[datetime], SimulatedPki],
        module_id: str,
        pcrs: Mapping[int, bytes],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pki = pki
        self.module_id = module_id
        self.clock = clock
        self._pcrs = [ZERO_PCR] * MAX_PCRS
        self._locked = [False] * MAX_PCRS
        for index, value in pcrs.items():
            self._pcrs[index] = value
            self._locked[index] = True
        self._lock = threading.Lock()

    def pki(self, now: datetime) -> SimulatedPki:
        return self._pki if isinstance(self._pki, SimulatedPki) else self._pki(now)

    def exchange(self, request: bytes) -> bytes:
        try:
            if len(request) > NSM_REQUEST_MAX:
                raise _NsmFailure("InputTooLarge")
            try:
                decoded = cbor2.loads(request)
            except (cbor2.CBORDecodeError, ValueError):
                raise _NsmFailure("InvalidArgument") from None
            with self._lock:
                response = self._dispatch(decoded)
        except _NsmFailure as failure:
            response = {"Error": failure.code}
        return cbor2.dumps(response)

    def _dispatch(self, request: Any) -> Any:
        if request == "DescribeNSM":
            return {
                "DescribeNSM": {
                    "version_major": 1,
                    "version_minor": 0,
                    "version_patch": 0,
                    "module_id": self.module_id,
                    "max_pcrs": MAX_PCRS,
                    "locked_pcrs": [i for i in range(MAX_PCRS) if self._locked[i]],
                    "digest": "SHA384",
                }
            }
        if request == "GetRandom":
            return {"GetRandom": {"random": secrets.token_bytes(RANDOM_BYTES)}}
        if not isinstance(request, dict) or len(request) != 1:
            raise _NsmFailure("InvalidOperation")
        ((kind, body),) = request.items()
        handlers: dict[str, Callable[[Any], Any]] = {
            "Attestation": self._attestation,
            "DescribePCR": self._describe_pcr,
            "ExtendPCR": self._extend_pcr,
            "LockPCR": self._lock_pcr,
            "LockPCRs": self._lock_pcrs,
        }
        if kind not in handlers or not isinstance(body, dict):
            raise _NsmFailure("InvalidOperation")
        return handlers[kind](body)

    def _index(self, body: dict[str, Any]) -> int:
        index = body.get("index")
        if type(index) is not int or not 0 <= index < MAX_PCRS:
            raise _NsmFailure("InvalidIndex")
        return index

    def _describe_pcr(self, body: dict[str, Any]) -> Any:
        index = self._index(body)
        return {"DescribePCR": {"lock": self._locked[index], "data": self._pcrs[index]}}

    def _extend_pcr(self, body: dict[str, Any]) -> Any:
        index = self._index(body)
        data = body.get("data")
        if not isinstance(data, bytes):
            raise _NsmFailure("InvalidArgument")
        if self._locked[index]:
            raise _NsmFailure("ReadOnlyIndex")
        self._pcrs[index] = extend(self._pcrs[index], data)
        return {"ExtendPCR": {"data": self._pcrs[index]}}

    def _lock_pcr(self, body: dict[str, Any]) -> Any:
        self._locked[self._index(body)] = True
        return "LockPCR"

    def _lock_pcrs(self, body: dict[str, Any]) -> Any:
        count = body.get("range")
        if type(count) is not int or not 0 <= count <= MAX_PCRS:
            raise _NsmFailure("InvalidIndex")
        for index in range(count):
            self._locked[index] = True
        return "LockPCRs"

    def _attestation(self, body: dict[str, Any]) -> Any:
        limits = {"user_data": MAX_USER_DATA_BYTES, "nonce": MAX_NONCE_BYTES, "public_key": MAX_PUBLIC_KEY_BYTES}
        fields: dict[str, bytes | None] = {}
        for name, limit in limits.items():
            value = body.get(name)
            if value is not None and not isinstance(value, bytes):
                raise _NsmFailure("InvalidArgument")
            if value is not None and len(value) > limit:
                raise _NsmFailure("InputTooLarge")
            fields[name] = value
        return {"Attestation": {"document": self.attest(**fields)}}

    def attest(
        self, user_data: bytes | None = None, nonce: bytes | None = None, public_key: bytes | None = None
    ) -> bytes:
        """Sign a document in the AWS layout: all locked PCRs, 4-certificate bundle, fresh 3-hour leaf."""
        now = self.clock()
        pki = self.pki(now)
        leaf = issue_leaf(pki.instance, self.module_id, now)
        document = AttestationDocument(
            module_id=self.module_id,
            timestamp=int(now.timestamp() * 1000),
            pcrs={i: self._pcrs[i] for i in range(MAX_PCRS) if self._locked[i]},
            certificate=leaf.der,
            cabundle=pki.cabundle(),
            public_key=public_key,
            user_data=user_data,
            nonce=nonce,
        )
        return sign1(document.to_cbor(), leaf.key).encode()


def pcr_value(value: bytes | str) -> bytes:
    raw = bytes.fromhex(value) if isinstance(value, str) else value
    if len(raw) != PCR_BYTES:
        raise InvalidInput(f"PCR value must be {PCR_BYTES} bytes", field="pcr")
    return raw


class NsmServer:
    """Serves one SimulatedNsm on a Unix socket (or tcp:HOST:PORT) with length-prefixed CBOR frames."""

    def __init__(self, nsm: SimulatedNsm, address: str) -> None:
        self.nsm = nsm
        self.address = address
        self._sock = self._bind(address)
        self._thread = threading.Thread(target=self._serve, name="nsm-server", daemon=True)

    @staticmethod
    def _bind(address: str) -> socket.socket:
        if address.startswith("tcp:"):
            host, _, port = address[4:].rpartition(":")
            sock = socket.create_server((host, int(port)))
        else:
            Path(address).unlink(missing_ok=True)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(address)
            os.chmod(address, 0o666)  # like /dev/nsm, any process in the enclave may use it
            sock.listen(16)
        return sock

    @property
    def bound_address(self) -> str:
        if self.address.startswith("tcp:"):
            host, port = self._sock.getsockname()[:2]
            return f"tcp:{host}:{port}"
        return self.address

    def start(self) -> Self:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = recv_frame(conn, NSM_REQUEST_MAX)
            except (InvalidInput, Unavailable, OSError):
                send_frame(conn, cbor2.dumps({"Error": "InputTooLarge"}))
                return
            send_frame(conn, self.nsm.exchange(request))

    def close(self) -> None:
        self._sock.close()
        if not self.address.startswith("tcp:"):
            Path(self.address).unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
