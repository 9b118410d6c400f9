"""Move aborts and node answers become typed errors; retries cover transport failures only."""

from __future__ import annotations

import asyncio
import socket

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from pysui import SuiRpcResult
from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_crypto import create_new_keypair

from k3sdaas.chain import (
    AlreadyStaked,
    ChainClient,
    ChainError,
    ChainSettings,
    InsufficientStake,
    InvalidArgument,
    MoveAbortError,
    ObjectNotFound,
    RpcUnavailable,
    TransactionRejected,
    encode_node_id,
    load_build_output,
)
from k3sdaas.chain.abi import ABORT_CODES, tier_by_name, tier_for_amount
from k3sdaas.chain.errors import abort_error
from k3sdaas.chain.keys import signer_from_text
from k3sdaas.chain.transport import parse_rpc_url, raise_for_result, with_retries
from k3sdaas.errors import NotFound, Unavailable


@pytest.fixture(scope="module")
def signer():
    return signer_from_text(create_new_keypair(scheme=SignatureScheme.ED25519)[1].to_bech32())


def settings(signer, url: str = "127.0.0.1:1", **kwargs: object) -> ChainSettings:
    return ChainSettings(rpc_url=url, signer=signer, **{"retry_delay": 0.01, **kwargs})


@pytest.mark.parametrize(
    ("code", "cls", "field"),
    [(1, InsufficientStake, "amount"), (2, InvalidArgument, "node_id"), (3, AlreadyStaked, "node_id"),
     (4, ObjectNotFound, "token_id"), (6, InvalidArgument, "bps"), (7, InsufficientStake, "amount")],
)
def test_staking_aborts_map_to_typed_errors(code: int, cls: type, field: str) -> None:
    error = abort_error("staking", "stake_and_mint_seal", code, "stake for node w1")
    assert isinstance(error, cls)
    assert error.field == field
    assert error.abort is not None and error.abort.code == code
    assert error.abort.name == ABORT_CODES["staking"][code]
    assert f"({code})" in str(error) and error.abort.name in str(error)


def test_unknown_abort_stays_a_move_abort() -> None:
    error = abort_error("registry", "register_enclave", 103)
    assert type(error) is MoveAbortError
    assert error.abort.name == "EPcrMismatch"
    assert type(abort_error("other", "f", 77)) is MoveAbortError


def test_not_found_is_the_runtime_not_found() -> None:
    assert isinstance(abort_error("staking", "tier", 4), NotFound)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(Status.NOT_FOUND, ObjectNotFound), (Status.INVALID_ARGUMENT, TransactionRejected),
     (Status.UNAVAILABLE, RpcUnavailable), (Status.INTERNAL, ChainError)],
)
def test_failed_results_are_classified_by_grpc_status(status: Status, cls: type) -> None:
    failed = SuiRpcResult(False, GRPCError(status, "details here").args)
    with pytest.raises(cls, match="details here"):
        raise_for_result(failed, "read object")


@pytest.mark.parametrize(
    ("url", "host_port"),
    [("fullnode.testnet.sui.io:443", ("fullnode.testnet.sui.io", 443)), ("https://node.example", ("node.example", 443)),
     ("https://127.0.0.1:9000", ("127.0.0.1", 9000)), ("localhost:50051", ("localhost", 50051))],
)
def test_rpc_urls(url: str, host_port: tuple[str, int]) -> None:
    assert parse_rpc_url(url) == host_port


@pytest.mark.parametrize("url", ["http://node:80", "node:notaport", "https://node/graphql", "://"])
def test_bad_rpc_urls_name_the_option(url: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_rpc_url(url)
    assert caught.value.field == "rpc_url"


async def test_transport_failures_are_retried_then_reported(signer) -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionResetError("reset by peer")
        return "answer"

    assert await with_retries(settings(signer, retries=3), "read", flaky) == "answer"
    assert calls == 3


async def test_other_errors_are_not_retried(signer) -> None:
    calls = 0

    async def aborts() -> None:
        nonlocal calls
        calls += 1
        raise abort_error("staking", "unstake", 5)

    with pytest.raises(ChainError, match="ECooldownActive"):
        await with_retries(settings(signer, retries=3), "unstake", aborts)
    assert calls == 1


async def test_slow_calls_time_out_as_unavailable(signer) -> None:
    async def hangs() -> None:
        await asyncio.sleep(10)

    with pytest.raises(RpcUnavailable, match="2 attempt"):
        await with_retries(settings(signer, retries=1, timeout=0.05), "read", hangs)


async def test_closed_port_is_rpc_unavailable(signer) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ChainClient(settings(signer, f"127.0.0.1:{port}", retries=1))
    with pytest.raises(RpcUnavailable) as caught:
        await client.connect()
    assert isinstance(caught.value, Unavailable) and caught.value.retryable
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_settings_validate(signer, tmp_path) -> None:
    with pytest.raises(InvalidArgument, match="ca_file"):
        settings(signer, ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(InvalidArgument, match="timeout"):
        settings(signer, timeout=0)


@pytest.mark.parametrize(
    ("node_id", "ok"), [("w", True), ("x" * 64, True), ("", False), ("x" * 65, False), ("é" * 33, False)]
)
def test_node_id_length_is_checked_in_bytes(node_id: str, ok: bool) -> None:
    if ok:
        assert encode_node_id(node_id) == node_id.encode()
    else:
        with pytest.raises(InvalidArgument) as caught:
            encode_node_id(node_id)
        assert caught.value.field == "node_id"


def test_build_output_errors_name_the_option(tmp_path) -> None:
    bad = tmp_path / "build.json"
    for content in ("{}", '{"modules": []}', '{"modules": ["%%%"]}', "not json"):
        bad.write_text(content)
        with pytest.raises(InvalidArgument) as caught:
            load_build_output(bad)
        assert caught.value.field == "build_output"
    with pytest.raises(InvalidArgument, match="does not exist"):
        load_build_output(tmp_path / "missing.json")


def test_tiers() -> None:
    assert [tier_for_amount(m) for m in (0, 499_999_999, 500_000_000, 2_000_000_000, 9_999_999_999, 10**10)] == [
        0, 0, 1, 2, 3, 4]
    assert tier_by_name("developer") == 2 and tier_by_name("4") == 4 and tier_by_name(1) == 1
    with pytest.raises(ValueError, match="unknown tier"):
        tier_by_name("root")
