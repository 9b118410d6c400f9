"""Dry runs (check mode) simulated by the node, Sui's protocol limits enforced before signing, and errors
mapped from the response's structured fields."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as rpc

from helpers.sui import no_transaction_reaches
from k3sdaas.chain import (
    AlreadyStaked,
    ChainClient,
    ChainSettings,
    Deployment,
    InsufficientBalance,
    InsufficientStake,
    InvalidArgument,
    Signer,
)
from k3sdaas_localnet.sui.testing import LocalNode

from .conftest import SUI

Settings = Callable[..., ChainSettings]


@pytest.fixture
async def dry(operator: Signer, settings_for: Settings, deployment: Deployment):
    async with ChainClient(settings_for(operator), deployment, dry_run=True) as client:
        yield client


async def test_a_dry_run_stake_answers_from_the_simulation_and_commits_nothing(
        node: LocalNode, dry: ChainClient, client: ChainClient, node_id: str) -> None:
    with no_transaction_reaches(node):
        token = await dry.stake(node_id, 2 * SUI)
    assert (token.node_id, token.stake_mist, token.tier, token.owner) == (node_id, 2 * SUI, 2, dry.address)
    assert token.valid and len(token.token_id) == 66
    assert ("/sui.rpc.v2.TransactionExecutionService/SimulateTransaction", "OK") in node.service_log()
    assert await client.find_token(node_id) is None  # nothing was committed


async def test_a_dry_run_refuses_what_the_real_run_refuses(dry: ChainClient, client: ChainClient,
                                                           node_id: str) -> None:
    with pytest.raises(InsufficientStake) as low:
        await dry.stake(node_id, 400_000_000)
    assert low.value.field == "amount"
    await client.stake(node_id, SUI)
    with pytest.raises(AlreadyStaked) as twice:  # decided by the simulated Move call (ENodeAlreadyStaked)
        await dry.stake(node_id, SUI)
    assert twice.value.abort is not None and twice.value.abort.name == "ENodeAlreadyStaked"


async def test_a_dry_run_slash_and_unstake_read_back_the_simulated_record(
        node: LocalNode, dry: ChainClient, client: ChainClient, node_id: str) -> None:
    token = await client.stake(node_id, 2 * SUI)
    with no_transaction_reaches(node):
        slashed = await dry.slash(token.token_id, 2500, "dry")
        assert (slashed.stake_mist, slashed.slashed_total_mist, slashed.tier) == (1_500_000_000, 500_000_000, 1)
        await dry.configure_pool(token_ttl_ms=1000, unstake_cooldown_ms=5)
        pool = await dry.pool_state()
        assert (pool.token_ttl_ms, pool.unstake_cooldown_ms) == (1000, 5)
    assert (await client.get_token(token.token_id)).stake_mist == 2 * SUI
    assert (await client.pool_state()).unstake_cooldown_ms == 0


async def test_a_200_kb_slash_reason_is_refused_before_signing(node: LocalNode, client: ChainClient,
                                                              node_id: str) -> None:
    with no_transaction_reaches(node, reads=False), pytest.raises(InvalidArgument) as caught:
        await client.slash("0x" + "ab" * 32, 1000, "x" * 200_000)
    assert caught.value.field == "reason" and "16384" in str(caught.value)
    with pytest.raises(InvalidArgument) as limit:  # 16382 bytes + a 2-byte length: at the limit, refused
        await client.slash("0x" + "ab" * 32, 1000, "x" * (16 * 1024 - 2))
    assert limit.value.field == "reason"


def test_execution_errors_map_by_kind_not_text(client: ChainClient) -> None:
    kind = rpc.ExecutionErrorExecutionErrorKind
    gas = client._execution_error("stake", rpc.ExecutionError(description="", kind=kind.INSUFFICIENT_GAS))
    assert isinstance(gas, InsufficientBalance)
    argument = client._execution_error("stake", rpc.ExecutionError(
        description="argument 2: type mismatch", command=1, kind=kind.COMMAND_ARGUMENT_ERROR,
        command_argument_error=rpc.CommandArgumentError(
            argument=2, kind=rpc.CommandArgumentErrorCommandArgumentErrorKind.TYPE_MISMATCH)))
    assert isinstance(argument, InvalidArgument) and "argument 2 of command 1" in str(argument)
    assert "TYPE_MISMATCH" in str(argument)
    text_only = client._execution_error("stake", rpc.ExecutionError(description="InsufficientGas in command 0"))
    assert not isinstance(text_only, InsufficientBalance)  # a description is not a kind
