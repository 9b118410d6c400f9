"""History and streams: transactions in checkpoints, ListEvents with filters and cursors, subscriptions."""

from __future__ import annotations

import asyncio

import pysui.sui.sui_common.sui_commands as cmd
from pysui.sui.sui_grpc import pgrpc_requests as rn
from pysui.sui.sui_grpc.pgrpc_filters import Literal, build_event_filter
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as rpc

SUI = 1_000_000_000


async def collect(chain, request) -> list:
    result = await chain.client.execute_grpc_request(request=request)
    assert result.is_ok(), result.result_string
    return [frame async for frame in result.result_data]


async def test_each_transaction_lands_in_a_checkpoint(chain, bob) -> None:
    txn = await chain.client.transaction()
    await txn.transfer_sui(recipient=bob.address, from_coin=txn.gas, amount=SUI)
    executed = await chain.execute(txn)
    latest = await chain.client.execute(command=cmd.GetLatestCheckpoint())
    assert latest.is_ok(), latest.result_string
    checkpoint = latest.result_data.checkpoint
    assert checkpoint.sequence_number == executed.checkpoint
    assert [t.digest for t in checkpoint.transactions] == [executed.digest]
    previous = await chain.client.execute(command=cmd.GetCheckpointBySequence(sequence_number=executed.checkpoint - 1))
    assert checkpoint.summary.previous_digest == previous.result_data.checkpoint.digest


async def test_list_events_filters_by_type_and_pages_with_cursors(chain, deployed) -> None:
    for node_id in (b"n1", b"n2", b"n3"):
        assert (await chain.stake(deployed, 1 * SUI, node_id)).effects.status.success
    staked_type = f"{deployed.package}::staking::Staked"
    only_staked = build_event_filter(terms=[[Literal("event_type", staked_type)]])
    frames = await collect(chain, rn.ListEvents(event_filter=only_staked))
    events = [f.event for f in frames if f.event is not None]
    assert [e.json.to_dict()["node_id"] for e in events] == ["bjE=", "bjI=", "bjM="]
    assert all(e.event_type == staked_type for e in events)
    assert frames[-1].end.reason == rpc.QueryEndReason.LEDGER_TIP

    first_page = await collect(chain, rn.ListEvents(event_filter=only_staked, options=rpc.QueryOptions(limit=2)))
    assert [f.event is not None for f in first_page] == [True, True]
    assert first_page[-1].end.reason == rpc.QueryEndReason.ITEM_LIMIT
    rest = await collect(chain, rn.ListEvents(
        event_filter=only_staked, options=rpc.QueryOptions(limit=2, after=first_page[-1].watermark.cursor)))
    assert [f.event.json.to_dict()["node_id"] for f in rest if f.event] == ["bjM="]

    by_module_not_staked = build_event_filter(terms=[[
        Literal("emit_module", f"{deployed.package}::staking"), Literal("event_type", staked_type, negated=True)]])
    minted = [f.event for f in await collect(chain, rn.ListEvents(event_filter=by_module_not_staked)) if f.event]
    assert {e.event_type.rsplit("::", 1)[1] for e in minted} == {"SealMinted"} and len(minted) == 3


async def test_subscribe_checkpoints_and_events_deliver_new_activity(chain, deployed) -> None:
    checkpoints = await chain.client.execute_grpc_request(request=rn.SubscribeCheckpoints())
    staked_filter = build_event_filter(terms=[[Literal("event_type", f"{deployed.package}::staking::Staked")]])
    events = await chain.client.execute_grpc_request(request=rn.SubscribeEvents(event_filter=staked_filter))
    checkpoint_stream, event_stream = checkpoints.result_data, events.result_data
    progress = await anext(event_stream)
    assert progress.event is None and progress.watermark.checkpoint is not None
    tip = await anext(checkpoint_stream)  # the stream begins at the current tip
    assert tip.cursor == progress.watermark.checkpoint

    executed = await chain.stake(deployed, SUI, b"live")
    seen = await asyncio.wait_for(anext(checkpoint_stream), timeout=10)
    assert seen.cursor == executed.checkpoint
    assert seen.checkpoint.transactions[0].digest == executed.digest
    event = await asyncio.wait_for(anext(event_stream), timeout=10)
    assert event.event.transaction_digest == executed.digest
    assert event.event.json.to_dict()["node_id"] == "bGl2ZQ=="
    await checkpoint_stream.aclose()
    await event_stream.aclose()
