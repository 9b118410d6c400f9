"""ChainClient against the Sui node stand-in, through the unmodified pysui gRPC client."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.sui import no_transaction_reaches
from k3sdaas.chain import (
    AlreadyStaked,
    ChainClient,
    ChainSettings,
    CursorStore,
    Deployment,
    InsufficientBalance,
    InsufficientStake,
    InvalidAmount,
    InvalidArgument,
    MoveAbortError,
    NotOwner,
    ObjectNotFound,
    TransactionRejected,
    abi,
    load_build_output,
    read_new_events,
)
from k3sdaas_localnet.sui.testing import LocalNode

from .conftest import SUI, new_signer

Settings = Callable[..., ChainSettings]


async def test_publish_is_found_again_from_the_upgrade_cap(client: ChainClient, deployment: Deployment) -> None:
    assert await client.find_deployment() == deployment
    assert await client.resolve_deployment(deployment.package_id) == deployment
    assert deployment.admin_cap_id and deployment.upgrade_cap_id
    pool = await client.pool_state()
    assert pool.pool_id == deployment.pool_id
    assert pool.token_ttl_ms == abi.DEFAULT_TOKEN_TTL_MS


async def test_a_signer_without_deployment_finds_none(node: LocalNode, settings_for: Settings) -> None:
    stranger = new_signer()
    node.faucet(stranger.address, SUI)
    async with ChainClient(settings_for(stranger)) as client:
        assert await client.find_deployment() is None


async def test_unknown_package_is_not_found(client: ChainClient) -> None:
    with pytest.raises(ObjectNotFound) as caught:
        await client.resolve_deployment("0x" + "42" * 32)
    assert caught.value.field == "package_id"


async def test_stake_mints_a_token_for_the_owner(client: ChainClient, node_id: str) -> None:
    owner = new_signer().address
    balance = await client.balance()
    token = await client.stake(node_id, 2 * SUI, owner=owner)
    assert len(token.token_id) == 66 and token.owner == owner and token.node_id == node_id
    assert (token.stake_mist, token.tier, token.tier_name, token.valid) == (2 * SUI, 2, "developer", True)
    assert abi.DEFAULT_TOKEN_TTL_MS // 1000 - 5 <= token.seconds_left() <= abi.DEFAULT_TOKEN_TTL_MS // 1000
    assert balance - await client.balance() > 2 * SUI  # the stake plus gas
    assert await client.token_for_node(node_id) == token.token_id
    found = await client.find_token(node_id)
    assert found is not None and found.as_dict(0) == token.as_dict(0)


async def test_second_stake_for_a_node_aborts_as_already_staked(client: ChainClient, node_id: str) -> None:
    await client.stake(node_id, SUI // 2)
    with pytest.raises(AlreadyStaked) as caught:
        await client.stake(node_id, SUI // 2)
    assert caught.value.abort.code == 3 and caught.value.abort.name == "ENodeAlreadyStaked"
    assert caught.value.abort.module == "staking"


async def test_add_stake_slash_refresh_unstake(client: ChainClient, node_id: str, node: LocalNode) -> None:
    token = await client.stake(node_id, SUI)
    assert token.tier == 1
    token = await client.add_stake(token.token_id, 4 * SUI)
    assert (token.stake_mist, token.tier) == (5 * SUI, 3)
    token = await client.slash(token.token_id, 1000, "incident-1")
    assert (token.stake_mist, token.tier, token.slashed_total_mist, token.slashed) == (
        4_500_000_000, 2, 500_000_000, True)
    assert await client.slash_reasons(token.token_id) == ["incident-1"]
    node.advance_clock(60_000)
    refreshed = await client.refresh(token.token_id)
    assert refreshed.expires_at_ms >= token.expires_at_ms + 60_000
    before = await client.balance()
    assert await client.unstake(token.token_id) == 4_500_000_000
    assert await client.balance() > before + 4 * SUI
    assert await client.find_token(node_id) is None
    assert await client.node_was_unstaked(node_id)
    with pytest.raises(ObjectNotFound):
        await client.get_token(token.token_id)


async def test_expired_token_is_invalid_until_refreshed(client: ChainClient, node_id: str, node: LocalNode) -> None:
    token = await client.stake(node_id, SUI)
    node.advance_clock(abi.DEFAULT_TOKEN_TTL_MS + 1)
    expired = await client.get_token(token.token_id)
    assert not expired.valid and expired.seconds_left() == 0 and expired.tier == 1
    refreshed = await client.refresh(token.token_id)
    assert refreshed.valid and refreshed.seconds_left() > abi.DEFAULT_TOKEN_TTL_MS // 1000 - 5


async def test_slash_to_tier_zero_makes_the_token_invalid(client: ChainClient, node_id: str) -> None:
    token = await client.stake(node_id, SUI // 2)
    slashed = await client.slash(token.token_id, 5000, "half")
    assert (slashed.tier, slashed.valid) == (0, False)
    with pytest.raises(InsufficientStake) as caught:
        await client.refresh(token.token_id)
    assert caught.value.abort.name == "EStakeBelowMinimum"


async def test_abort_codes_reach_the_caller_typed(client: ChainClient, node_id: str) -> None:
    token = await client.stake(node_id, SUI)
    with pytest.raises(InvalidAmount) as caught:
        await client.add_stake(token.token_id, 0)  # splits a zero coin: EZeroAmount on chain
    assert (caught.value.abort.code, caught.value.field) == (9, "amount")
    with pytest.raises(MoveAbortError) as anchored:
        await client.anchor_audit_batch(b"\x01" * 32, 2, 10, 11, 0, b"\x00" * 64)
    assert anchored.value.abort.name == "ETimestampOutOfWindow"


async def test_client_side_validation_sends_nothing(client: ChainClient, node: LocalNode) -> None:
    with no_transaction_reaches(node, reads=False):
        with pytest.raises(InsufficientStake):
            await client.stake("w", SUI // 2 - 1)
        with pytest.raises(InvalidArgument):
            await client.stake("x" * 65, SUI)
        with pytest.raises(InvalidArgument):
            await client.slash("0x1", 0, "r")
        with pytest.raises(InvalidArgument):
            await client.update_pcrs(b"\x01" * 47, b"\x01" * 48, b"\x01" * 48)


async def test_wrong_owner_cannot_refresh_or_unstake(client: ChainClient, node_id: str, settings_for: Settings,
                                                     deployment: Deployment, node: LocalNode) -> None:
    other = new_signer()
    node.faucet(other.address, 10 * SUI)
    token = await client.stake(node_id, SUI, owner=other.address)
    with pytest.raises(NotOwner):
        await client.unstake(token.token_id)
    # The node itself refuses a transaction that uses someone else's token.
    target = abi.target(deployment.package_id, abi.STAKING, "refresh_seal_token")

    async def refresh_anyway(txn: object) -> None:
        await txn.move_call(target=target, arguments=[deployment.pool_id, token.token_id, abi.CLOCK_ID])

    with pytest.raises(NotOwner, match="not owned by the sender"):
        await client.submit(await client.sign("refresh someone else's token", refresh_anyway), "refresh")
    async with ChainClient(settings_for(other), deployment) as owner_client:
        assert (await owner_client.refresh(token.token_id)).valid
        with pytest.raises(NotOwner):
            await owner_client.slash(token.token_id, 100, "not an admin")


async def test_tampered_signature_is_rejected(client: ChainClient) -> None:
    async def transfer(txn: object) -> None:
        coin = await txn.split_coin(coin=txn.gas, amounts=[1000])
        await txn.transfer_objects(transfers=[coin], recipient=client.address)

    signed = await client.sign("transfer", transfer)
    raw = bytearray(base64.b64decode(signed["sig_array"][0]))
    raw[5] ^= 0xFF
    tampered = dict(signed, sig_array=[base64.b64encode(bytes(raw)).decode()])
    with pytest.raises(TransactionRejected, match=r"(?i)signature"):
        await client.submit(tampered, "transfer")


async def test_stale_object_version_is_rejected(client: ChainClient) -> None:
    def transfer(amount: int) -> Callable[[object], object]:
        async def build(txn: object) -> None:
            coin = await txn.split_coin(coin=txn.gas, amounts=[amount])
            await txn.transfer_objects(transfers=[coin], recipient=client.address)

        return build

    first = await client.sign("first", transfer(1000))
    second = await client.sign("second", transfer(2000))  # built on the same gas coin version
    await client.submit(first, "first")
    assert await client.submit(first, "first again")  # identical bytes: the same result, not an error
    with pytest.raises(TransactionRejected, match="is not available for consumption, current version: 0x"):
        await client.submit(second, "second")


async def test_insufficient_balance_is_reported_before_sending(node: LocalNode, settings_for: Settings,
                                                               deployment: Deployment) -> None:
    poor = new_signer()
    node.faucet(poor.address, SUI)
    async with ChainClient(settings_for(poor), deployment) as client:
        with pytest.raises(InsufficientBalance) as caught:
            await client.stake("poor-node", 5 * SUI)
    assert caught.value.field == "amount" and "1 SUI" in str(caught.value)


async def test_unknown_token_is_not_found(client: ChainClient) -> None:
    with pytest.raises(ObjectNotFound) as caught:
        await client.get_token("0x" + "77" * 32)
    assert caught.value.field == "token_id"
    assert await client.find_token("never-staked") is None


async def test_events_resume_from_the_stored_cursor(client: ChainClient, node_id: str, tmp_path: Path) -> None:
    store = CursorStore(tmp_path / "cursors.json")
    await read_new_events(client, store, "staking", ["Staked"])  # catch up with earlier tests
    await client.stake(node_id, SUI)
    fresh = await read_new_events(client, store, "staking", ["Staked"])
    assert [e.name for e in fresh] == ["Staked"]
    assert fresh[0].fields["node_id"] == base64.b64encode(node_id.encode()).decode()
    assert await read_new_events(client, store, "staking", ["Staked"]) == []
    assert store.get("staking") == fresh[-1].cursor


async def test_cached_lookup_skips_the_node_until_a_write(client: ChainClient, node_id: str, node: LocalNode) -> None:
    token = await client.stake(node_id, SUI)
    calls = len(node.service_log())
    assert await client.get_token(token.token_id, max_age=60) == token
    assert len(node.service_log()) == calls
    await client.add_stake(token.token_id, SUI)  # a write invalidates the cache
    assert (await client.get_token(token.token_id, max_age=60)).stake_mist == 2 * SUI


async def test_update_pcrs_needs_the_admin_cap(client: ChainClient) -> None:
    outcome = await client.update_pcrs(b"\x01" * 48, b"\x02" * 48, b"\x03" * 48)
    assert [e.name for e in outcome.events] == ["PcrsUpdated"]


async def test_the_newest_deployment_is_found(node: LocalNode, settings_for: Settings, build_output: Path) -> None:
    publisher = new_signer()
    node.faucet(publisher.address, 10 * SUI)
    async with ChainClient(settings_for(publisher)) as client:
        first = await client.publish(*load_build_output(build_output))
        second = await client.publish(*load_build_output(build_output))
        assert second.package_id != first.package_id
        assert await client.find_deployment() == second
