"""Token look-ups read the pool's Table entries directly (derived dynamic-field ids), never the event stream."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from k3sdaas.chain import ChainClient, ChainSettings, Deployment, ObjectNotFound, Signer
from k3sdaas_localnet.sui.testing import LocalNode

from .conftest import SUI

GET_OBJECT = "/sui.rpc.v2.LedgerService/GetObject"
LIST_EVENTS = "/sui.rpc.v2.LedgerService/ListEvents"


async def cold_lookup_calls(node: LocalNode, settings: ChainSettings, deployment: Deployment, node_id: str
                            ) -> list[str]:
    """The RPCs a new client makes to find a node's token (after its connect)."""
    async with ChainClient(settings, deployment) as fresh:
        before = len(node.service_log())
        token = await fresh.find_token(node_id)
        calls = [path for path, _ in node.service_log()[before:]]
    assert token is not None and token.node_id == node_id
    return calls


async def test_a_cold_look_up_is_a_few_get_objects_whatever_the_pool_size(
        node: LocalNode, client: ChainClient, operator: Signer, settings_for: Callable[..., ChainSettings],
        deployment: Deployment, node_id: str) -> None:
    await client.stake(node_id, SUI)
    first = await cold_lookup_calls(node, settings_for(operator), deployment, node_id)
    for extra in range(4):
        await client.stake(f"{node_id}-more-{extra}", SUI)
    later = await cold_lookup_calls(node, settings_for(operator), deployment, node_id)
    assert LIST_EVENTS not in first
    # the pool (table ids), the node's entry, the token's record and the clock: four reads, both times
    assert first == later == [GET_OBJECT] * 4


async def test_a_warm_look_up_reads_the_record_and_the_clock_only(node: LocalNode, client: ChainClient,
                                                                  node_id: str) -> None:
    token = await client.stake(node_id, 2 * SUI)
    before = len(node.service_log())
    again = await client.get_token(token.token_id)
    assert [path for path, _ in node.service_log()[before:]] == [GET_OBJECT, GET_OBJECT]
    assert again.stake_mist == 2 * SUI and again.tier == 2 and again.node_id == node_id


async def test_writes_are_read_back_from_the_table_entry(client: ChainClient, node_id: str) -> None:
    token = await client.stake(node_id, 2 * SUI)
    added = await client.add_stake(token.token_id, 3 * SUI)
    assert (added.stake_mist, added.tier) == (5 * SUI, 3)
    slashed = await client.slash(token.token_id, 1000, "reads")
    assert (slashed.stake_mist, slashed.slashed_total_mist, slashed.tier) == (4_500_000_000, 500_000_000, 2)
    await client.unstake(token.token_id)
    assert await client.token_for_node(node_id) is None
    with pytest.raises(ObjectNotFound) as caught:
        await client.get_token(token.token_id)
    assert caught.value.field == "token_id"


async def test_a_token_of_another_pool_has_no_record_here(client: ChainClient, node_id: str) -> None:
    with pytest.raises(ObjectNotFound):
        await client.get_token("0x" + "ab" * 32)
    assert await client.token_for_node(node_id) is None


@pytest.mark.slow
async def test_a_long_lived_client_builds_more_than_pysuis_cache_holds(client: ChainClient) -> None:
    """pysui's class-wide move_call LRU (256 entries) raises KeyError on eviction; the client empties it."""
    target = f"{client.deployment.package_id}::staking::tier_for_amount"

    async def one_call(txn: object) -> None:
        await txn.move_call(target=target, arguments=[SUI])

    for _ in range(260):  # built and signed (pysui's build changes the transaction, so its cache key), not sent
        await client.sign("tier", one_call)
