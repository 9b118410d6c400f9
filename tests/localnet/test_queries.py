"""Read paths a client relies on: function signatures, packages, dry runs, batches, coin metadata."""

from __future__ import annotations

import pysui.sui.sui_common.sui_commands as cmd
from grpclib.const import Status
from pysui.sui.sui_grpc import pgrpc_requests as rn
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as rpc

from k3sdaas_localnet.sui.movetypes import CLOCK_ID, COIN_TYPE, FRAMEWORK

SUI = 1_000_000_000


async def test_get_function_reports_move_signatures(chain, deployed) -> None:
    result = await chain.client.execute(command=cmd.GetFunction(
        package=deployed.package, module_name="staking", function_name="stake_and_mint_seal"))
    assert result.is_ok(), result.result_string
    params = result.result_data.function.parameters
    Body, Ref = rpc.OpenSignatureBodyType, rpc.OpenSignatureReference
    assert [(p.reference, p.body.type) for p in params] == [
        (Ref.MUTABLE, Body.DATATYPE), (None, Body.DATATYPE), (None, Body.VECTOR), (None, Body.ADDRESS),
        (Ref.IMMUTABLE, Body.DATATYPE), (Ref.MUTABLE, Body.DATATYPE),
    ]
    assert params[0].body.type_name == f"{deployed.package}::staking::StakePool"
    assert params[1].body.type_name == f"{FRAMEWORK}::coin::Coin"
    assert params[1].body.type_parameter_instantiation[0].type_name == f"{FRAMEWORK}::sui::SUI"
    assert params[2].body.type_parameter_instantiation[0].type == Body.U8
    assert params[5].body.type_name == f"{FRAMEWORK}::tx_context::TxContext"
    missing = await chain.client.execute(command=cmd.GetFunction(
        package=deployed.package, module_name="staking", function_name="no_such_function"))
    assert not missing.is_ok() and Status.NOT_FOUND in missing.result_string


async def test_framework_nitro_function_is_an_entry_returning_a_document(chain) -> None:
    result = await chain.client.execute(command=cmd.GetFunction(
        package="0x2", module_name="nitro_attestation", function_name="load_nitro_attestation"))
    function = result.result_data.function
    assert function.is_entry and function.visibility == rpc.FunctionDescriptorVisibility.PRIVATE
    assert function.returns[0].body.type_name == f"{FRAMEWORK}::nitro_attestation::NitroAttestationDocument"


async def test_dry_run_reports_effects_without_changing_state(chain, bob) -> None:
    txn = await chain.client.transaction()
    await txn.transfer_sui(recipient=bob.address, from_coin=txn.gas, amount=5 * SUI)
    tx_bytes = await txn.build()
    result = await chain.client.execute(command=cmd.SimulateTransaction(tx_bytestr=tx_bytes))
    assert result.is_ok(), result.result_string
    simulated = result.result_data.transaction
    assert simulated.effects.status.success and simulated.checkpoint is None
    assert {c.address: int(c.amount) for c in simulated.balance_changes}[bob.address] == 5 * SUI
    balance = await chain.client.execute(command=cmd.GetAddressCoinBalance(owner=bob.address))
    assert balance.result_data.balance.balance == 100 * SUI


async def test_batch_get_objects_answers_per_id(chain) -> None:
    missing = "0x" + "77" * 32
    result = await chain.client.execute_grpc_request(request=rn.GetMultipleObjects(object_ids=[CLOCK_ID, missing]))
    assert result.is_ok(), result.result_string
    clock, absent = result.result_data.objects
    assert clock.object.owner.kind == rpc.OwnerOwnerKind.SHARED and int(clock.object.json.to_dict()["timestamp_ms"]) > 0
    assert absent.object is None and absent.error.code == Status.NOT_FOUND.value


async def test_owned_objects_page_and_filter_by_type(chain, node) -> None:
    for amount in (1, 2, 3):
        node.faucet(chain.account.address, amount * SUI)
    first = await chain.client.execute_grpc_request(request=rn.GetCoins(owner=chain.account.address, page_size=2))
    assert len(first.result_data.objects) == 2 and first.result_data.next_page_token
    every = await chain.client.execute_for_all(command=cmd.GetCoins(owner=chain.account.address))
    assert sorted(o.balance for o in every.result_data.objects) == [SUI, 2 * SUI, 3 * SUI, 100 * SUI]
    assert all(o.object_type == COIN_TYPE for o in every.result_data.objects)
    none = await chain.client.execute_for_all(command=cmd.GetObjectsForType(
        owner=chain.account.address, object_type="0x2::package::UpgradeCap"))
    assert none.result_data.objects == []


async def test_coin_metadata_and_balances(chain) -> None:
    meta = await chain.client.execute(command=cmd.GetCoinMetaData())
    assert meta.is_ok(), meta.result_string
    balances = await chain.client.execute_grpc_request(request=rn.GetAddressCoinBalances(owner=chain.account.address))
    assert [b.balance for b in balances.result_data.balances] == [100 * SUI]


async def test_list_checkpoints_streams_in_order(chain, bob) -> None:
    for _ in range(2):
        txn = await chain.client.transaction()
        await txn.transfer_sui(recipient=bob.address, from_coin=txn.gas, amount=SUI)
        await chain.execute(txn)
    result = await chain.client.execute_grpc_request(request=rn.ListCheckpoints(start_checkpoint=1))
    frames = [f async for f in result.result_data]
    numbers = [f.checkpoint.sequence_number for f in frames if f.checkpoint]
    assert numbers == sorted(numbers) and numbers[0] == 1 and len(numbers) >= 4
    assert frames[-1].end.reason == rpc.QueryEndReason.LEDGER_TIP


async def test_read_functions_answer_through_simulation(chain, deployed) -> None:
    token = chain.created(await chain.stake(deployed, 2 * SUI, b"reader"), "::staking::SealToken")[0]
    txn = await chain.client.transaction()
    await txn.move_call(target=f"{deployed.package}::staking::is_valid", arguments=[deployed.pool, token, "0x6"])
    await txn.move_call(target=f"{deployed.package}::staking::tier", arguments=[deployed.pool, token])
    await txn.move_call(target=f"{deployed.package}::staking::token_for_node", arguments=[deployed.pool, b"reader"])
    result = await chain.client.execute(command=cmd.SimulateTransaction(tx_bytestr=await txn.build()))
    assert result.is_ok(), result.result_string
    valid, tier, token_for_node = (c.return_values[0] for c in result.result_data.command_outputs)
    assert valid.value.value == b"\x01" and tier.value.value == b"\x02"
    assert token_for_node.value.value == b"\x01" + bytes.fromhex(token[2:])
    assert token_for_node.json.to_dict() == token
