"""The pysui gRPC client, built privately from settings, and the retry/timeout policy around it.

pysui reads its configuration from ``PysuiConfig.json``. We build that configuration in a private
temporary directory (mode 0700) that is removed before any network call, and add the key with
``persist=False`` so the key is never written to disk at all. Only transport failures are retried:
a refused connection, a reset stream, a timeout, or gRPC ``UNAVAILABLE``/``DEADLINE_EXCEEDED``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError
from pysui import PysuiConfiguration, SuiRpcResult, client_factory
from pysui.sui.sui_common.config.confgroup import GroupProtocol, NetworkType
from pysui.sui.sui_grpc.pgrpc_clients import GrpcProtocolClient

from .errors import ChainError, InvalidArgument, ObjectNotFound, RpcUnavailable, TransactionRejected
from .keys import Signer

T = TypeVar("T")
# pysui logs every failed request with its traceback at ERROR, on loggers of its own outside "pysui" too, also for
# the NOT_FOUND answers this client expects; callers get a ChainError instead. Propagated, the records would reach
# whatever handles the root logger: Python's stderr fallback, or Mitogen's forwarding to the Ansible controller's
# terminal. Whoever wants them attaches a handler to these loggers.
for _name in ("pysui", "pgrpc_client", "pgql_client", "async_funcs", "mtobcs"):
    logging.getLogger(_name).addHandler(logging.NullHandler())
    logging.getLogger(_name).propagate = False

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, TLS (ssl.SSLError is an OSError)
    asyncio.TimeoutError,
    StreamTerminatedError,
    ProtocolError,
)
RETRYABLE_STATUS = frozenset({Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED, Status.RESOURCE_EXHAUSTED})
# Bounds of what a user may ask for, so that no setting can make a call wait for ever.
MAX_TIMEOUT = 600.0  # seconds per attempt
MAX_RETRIES = 10
MAX_BACKOFF = 2.0  # seconds between two attempts
MAX_TOTAL_BACKOFF = 10.0  # seconds of waiting between all attempts of one call
MAX_CA_FILE_BYTES = 1 << 20
MAX_HOSTNAME_BYTES = 253


@dataclass(frozen=True)
class ChainSettings:
    """How to reach the node and sign: never logged (the signer hides its key from ``repr``)."""

    rpc_url: str
    signer: Signer
    ca_file: str | None = None
    timeout: float = 30.0
    retries: int = 3
    retry_delay: float = 0.5
    host_port: tuple[str, int] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "host_port", parse_rpc_url(self.rpc_url))
        if not isinstance(self.timeout, (int, float)) or not 0 < self.timeout <= MAX_TIMEOUT:  # NaN fails too
            raise InvalidArgument(f"timeout must be above 0 and at most {MAX_TIMEOUT:g} seconds, got {self.timeout!r}",
                                  field="timeout")
        if not isinstance(self.retries, int) or not 0 <= self.retries <= MAX_RETRIES:
            raise InvalidArgument(f"retries must be 0 to {MAX_RETRIES}, got {self.retries!r}", field="retries")
        if not math.isfinite(self.retry_delay) or not 0 <= self.retry_delay <= MAX_BACKOFF:
            raise InvalidArgument(f"retry_delay must be 0 to {MAX_BACKOFF:g} seconds", field="retry_delay")
        if self.ca_file is not None:
            tls_context(self.ca_file)  # refuse a bad CA file here, before any connection is tried


def parse_rpc_url(url: str) -> tuple[str, int]:
    """``host:port``, ``https://host:port`` or ``https://host`` (port 443) -> (host, port)."""
    text = str(url).strip()
    try:
        parts = urlsplit(text if "://" in text else f"https://{text}")
        port = parts.port or 443
    except ValueError as exc:  # an invalid port, an unclosed IPv6 bracket...
        raise InvalidArgument(f"rpc_url {url!r} is not a valid URL: {exc}", field="rpc_url") from None
    if parts.scheme not in ("https", "grpcs") or not parts.hostname or parts.path not in ("", "/"):
        raise InvalidArgument(
            f"rpc_url must be host:port or https://host[:port] of a Sui gRPC endpoint, got {url!r:.200}",
            field="rpc_url",
        )
    try:  # what the resolver will do with it: a name over 253 bytes or a label over 63 fails there
        if len(parts.hostname.encode("idna")) > MAX_HOSTNAME_BYTES:
            raise UnicodeError("too long")
    except UnicodeError:
        raise InvalidArgument(f"rpc_url host {parts.hostname!r:.200} is not a valid host name",
                              field="rpc_url") from None
    return parts.hostname, port


def tls_context(ca_file: str) -> ssl.SSLContext:
    """grpclib's own default context, trusting ``ca_file`` instead of certifi's bundle.

    The file must be a regular file of bounded size (not a device or a FIFO) holding PEM certificates.
    """
    path = Path(ca_file)
    try:
        info = path.stat()
    except OSError:
        raise InvalidArgument(f"ca_file {ca_file!r} does not exist or cannot be read", field="ca_file") from None
    if not path.is_file() or info.st_size > MAX_CA_FILE_BYTES:
        raise InvalidArgument(f"ca_file {ca_file!r} must be a regular file of at most {MAX_CA_FILE_BYTES} bytes",
                              field="ca_file")
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    except (ssl.SSLError, OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"ca_file {ca_file!r} holds no PEM CA certificate: {exc}", field="ca_file") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20")
    ctx.set_alpn_protocols(["h2"])
    return ctx


def build_pysui_client(settings: ChainSettings) -> GrpcProtocolClient:
    """A GrpcProtocolClient for ``settings``; its configuration never touches a persistent path."""
    host, port = settings.host_port
    with tempfile.TemporaryDirectory(prefix="k3sdaas-sui-") as private_dir:
        config = PysuiConfiguration.initialize_config(
            in_folder=Path(private_dir), init_groups=[{"name": "k3sdaas_bootstrap", "make_active": True}]
        )
        config.new_group(
            group_name="k3sdaas",
            profile_block=[
                {"profile_name": "node", "url": f"https://{host}:{port}", "network_type": NetworkType.LOCAL,
                 "make_active": True}
            ],
            key_block=[{"key_string": settings.signer.keystring, "alias": "k3sdaas-signer"}],
            active_address_index=0,
            group_protocol=GroupProtocol.GRPC,
            make_group_active=True,
            persist=False,
        )
        client = client_factory(config)
    if not isinstance(client, GrpcProtocolClient):  # the group is GRPC, so this would be a pysui change
        raise ChainError(f"pysui returned {type(client).__name__}, expected a gRPC client")
    if settings.ca_file:
        # pysui always builds Channel(ssl=True), which trusts certifi only; a private CA (the local
        # node's, or a corporate one) needs the same channel with our context.
        client._channel.close()
        client._channel = Channel(host=host, port=port, ssl=tls_context(settings.ca_file))
    return client


async def open_client(client: GrpcProtocolClient, settings: ChainSettings) -> None:
    """pysui's first call (the protocol config); the TLS failures it reports only as text become typed errors."""
    try:
        await client.__aenter__()
    except ValueError as exc:
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text:  # pysui keeps only the ssl error's args
            hint = "check ca_file" if settings.ca_file else "set ca_file to the CA that signed it"
            raise InvalidArgument(f"the node's TLS certificate is not trusted ({text}): {hint}",
                                  field="ca_file") from None
        raise RpcUnavailable(f"connect: {text}") from None


def grpc_status(result: SuiRpcResult) -> tuple[Status | None, str]:
    """The gRPC status and message of a failed pysui result (pysui keeps ``GRPCError.args``)."""
    detail = result.result_string
    if isinstance(detail, tuple) and detail and isinstance(detail[0], Status):
        return detail[0], str(detail[1] if len(detail) > 1 else "")
    return None, str(detail)


def raise_for_result(result: SuiRpcResult, what: str) -> None:
    """Turn a failed pysui result into a typed error."""
    status, message = grpc_status(result)
    if status in RETRYABLE_STATUS:
        raise RpcUnavailable(f"{what}: node answered {status.name}: {message}")
    if status == Status.NOT_FOUND:
        raise ObjectNotFound(f"{what}: not found: {message}")
    if status == Status.INVALID_ARGUMENT:
        raise TransactionRejected(f"{what}: rejected by the node: {message}")
    raise ChainError(f"{what} failed: {status.name + ': ' if status else ''}{message}")


def backoff_delays(settings: ChainSettings) -> list[float]:
    """The waits before each retry: doubling, at most MAX_BACKOFF each and MAX_TOTAL_BACKOFF in all."""
    delays: list[float] = []
    for number in range(settings.retries):
        delay = min(settings.retry_delay * 2**number, MAX_BACKOFF)
        if sum(delays) + delay > MAX_TOTAL_BACKOFF:
            break
        delays.append(delay)
    return delays


async def with_retries(settings: ChainSettings, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """Run ``attempt`` with the timeout; retry transport failures with capped exponential backoff."""
    host, port = settings.host_port
    last: BaseException | None = None
    delays = backoff_delays(settings)
    for number in range(len(delays) + 1):
        if number:
            await asyncio.sleep(delays[number - 1])
        try:
            return await asyncio.wait_for(attempt(), settings.timeout)
        except RpcUnavailable as exc:
            last = exc
        except GRPCError as exc:
            if exc.status not in RETRYABLE_STATUS:
                raise
            last = exc
        except TRANSPORT_ERRORS as exc:
            last = exc
    reason = f"{type(last).__name__}: {last}" if last else "no answer"
    raise RpcUnavailable(
        f"{what}: Sui RPC {host}:{port} unreachable after {len(delays) + 1} attempt(s) ({reason})"
    ) from last


def ok_data(result: SuiRpcResult, what: str) -> Any:
    if not result.is_ok():
        raise_for_result(result, what)
    return result.result_data
