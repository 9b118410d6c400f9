"""The stand-in refuses what a Sui full node refuses before execution, with Sui's own texts, and reports
execution errors with their structured fields (``command_argument_error``)."""

from __future__ import annotations

import base64

import pysui.sui.sui_common.sui_commands as cmd
import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from pysui.sui.sui_bcs import bcs
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as rpc

from k3sdaas_localnet.sui.testing import make_account

from .conftest import Chain

SUI = 1_000_000_000
UNPUBLISHED = "0x" + "42" * 32


async def gas_coin(chain) -> rpc.Object:
    coins = await chain.client.execute(command=cmd.GetGas(owner=chain.account.address))
    assert coins.is_ok(), coins.result_string
    return coins.result_data.objects[0]


def resigned(chain, tx_bytes: bytes) -> dict[str, object]:
    encoded = base64.b64encode(tx_bytes).decode()
    keypair = chain.account.config.keypair_for_address(address=chain.account.address)
    return {"tx_bytestr": encoded, "sig_array": [keypair.new_sign_secure(encoded)]}


async def test_a_call_into_an_unpublished_package_is_refused_before_execution(chain, deployed) -> None:
    txn = await chain.client.transaction()
    await txn.move_call(target=f"{deployed.package}::staking::tier_for_amount", arguments=[SUI])
    data = bcs.TransactionData.deserialize(base64.b64decode(await txn.build()))
    data.value.TransactionKind.value.Command[0].value.Package = bcs.Address.from_str(UNPUBLISHED)
    before = await gas_coin(chain)
    refused = await chain.client.execute(command=cmd.ExecuteTransaction(**resigned(chain, data.serialize())))
    assert not refused.is_ok()
    status, message = refused.result_string[:2]
    assert status == Status.INVALID_ARGUMENT and message == f"Dependent package not found on-chain: {UNPUBLISHED}"
    after = await gas_coin(chain)
    assert (after.version, after.balance) == (before.version, before.balance)  # no gas charged


async def test_simulating_a_call_into_an_unpublished_package_is_refused_alike(chain) -> None:
    ptb = rpc.ProgrammableTransaction(
        inputs=[rpc.Input(kind=rpc.InputInputKind.PURE, pure=SUI.to_bytes(8, "little"))],
        commands=[rpc.Command(move_call=rpc.MoveCall(
            package=UNPUBLISHED, module="staking", function="tier_for_amount",
            arguments=[rpc.Argument(kind=rpc.ArgumentArgumentKind.INPUT, input=0)]))],
    )
    request = rpc.SimulateTransactionRequest(transaction=rpc.Transaction(
        kind=rpc.TransactionKind(kind=rpc.TransactionKindKind.PROGRAMMABLE_TRANSACTION, programmable_transaction=ptb),
        sender=chain.account.address))
    stub = rpc.TransactionExecutionServiceStub(chain.client._channel)
    with pytest.raises(GRPCError) as refused:
        await stub.simulate_transaction(request)
    assert refused.value.status == Status.INVALID_ARGUMENT
    assert refused.value.message == f"Dependent package not found on-chain: {UNPUBLISHED}"


async def test_a_pure_argument_of_16_kib_is_refused_with_suis_text(chain, deployed) -> None:
    reason = b"r" * (16 * 1024 - 3)  # with its 2-byte length prefix: 16383 bytes, just below the limit
    ok = await chain.call(deployed, "staking::slash", [deployed.pool, deployed.admin_cap, "0x" + "ab" * 32, 1000,
                                                        reason, "0x6"])
    assert ok.effects.status.error.abort.abort_code == 4  # reached execution (ETokenNotFound), not refused
    txn = await chain.client.transaction()
    await txn.move_call(target=f"{deployed.package}::staking::slash",
                        arguments=[deployed.pool, deployed.admin_cap, "0x" + "ab" * 32, 1000, reason + b"r", "0x6"])
    signed = await txn.build_and_sign(gas_budget=10_000_000)
    refused = await chain.client.execute(command=cmd.ExecuteTransaction(**signed))
    assert refused.result_string[:2] == (Status.INVALID_ARGUMENT,
                                     "Size limit exceeded: maximum pure argument size is 16384")


async def test_a_transaction_over_128_kib_is_refused_with_suis_text(chain, deployed) -> None:
    txn = await chain.client.transaction()
    for index in range(9):  # distinct reasons: pysui shares identical inputs
        await txn.move_call(target=f"{deployed.package}::staking::slash",
                            arguments=[deployed.pool, deployed.admin_cap, "0x" + "ab" * 32, 1000,
                                       b"%d" % index * 15000, "0x6"])
    signed = await txn.build_and_sign(gas_budget=10_000_000)
    refused = await chain.client.execute(command=cmd.ExecuteTransaction(**signed))
    status, message = refused.result_string[:2]
    assert status == Status.INVALID_ARGUMENT
    assert message.startswith("Size limit exceeded: serialized transaction size exceeded maximum of 131072 is 1")


async def test_stale_missing_and_unpaid_inputs_use_suis_texts(chain, bob) -> None:
    first = await chain.client.transaction()
    await first.transfer_sui(recipient=bob.address, from_coin=first.gas, amount=SUI)
    signed_first = await first.build_and_sign()
    second = await chain.client.transaction()
    await second.transfer_sui(recipient=bob.address, from_coin=second.gas, amount=2 * SUI)  # other bytes
    signed_second = await second.build_and_sign()
    assert (await chain.client.execute(command=cmd.ExecuteTransaction(**signed_first))).is_ok()
    stale = (await chain.client.execute(command=cmd.ExecuteTransaction(**signed_second))).result_string[1]
    gas = bcs.TransactionData.deserialize(base64.b64decode(signed_second["tx_bytestr"])).value.GasData.Payment[0]
    current = (await gas_coin(chain)).version
    assert stale == (f"Object ID {gas.ObjectID.to_address_str()} Version {gas.SequenceNumber:#x} Digest "
                     f"{gas.ObjectDigest.to_digest_str()} is not available for consumption, current version: "
                     f"{current:#x}")

    txn = await chain.client.transaction()
    await txn.transfer_sui(recipient=bob.address, from_coin=txn.gas, amount=SUI)
    data = bcs.TransactionData.deserialize(base64.b64decode(await txn.build()))
    data.value.GasData.Payment[0].ObjectID = bcs.Address.from_str("0x" + "77" * 32)
    missing = (await chain.client.execute(command=cmd.ExecuteTransaction(**resigned(chain, data.serialize()))))
    version = data.value.GasData.Payment[0].SequenceNumber
    assert missing.result_string[1] == (f"Could not find the referenced object 0x{'77' * 32} at version "
                                        f"Some(SequenceNumber({version}))")



async def test_a_budget_above_the_gas_balance_uses_suis_text(node, tmp_path, bob) -> None:
    poor = make_account(node, tmp_path / "poor")
    node.faucet(poor.address, SUI)
    async with poor.client() as client:
        chain = Chain(client, poor)
        txn = await client.transaction()
        await txn.transfer_sui(recipient=bob.address, from_coin=txn.gas, amount=1000)
        data = bcs.TransactionData.deserialize(base64.b64decode(await txn.build(gas_budget=10_000_000)))
        data.value.GasData.Budget = 2 * SUI
        unpaid = await client.execute(command=cmd.ExecuteTransaction(**resigned(chain, data.serialize())))
        assert unpaid.result_string[:2] == (
            Status.INVALID_ARGUMENT, f"Balance of gas object {SUI} is lower than the needed amount: {2 * SUI}")


async def test_execution_errors_carry_the_command_argument_error(chain, deployed) -> None:
    # the AdminCap where the pool goes: argument 0 of the call has the wrong type
    executed = await chain.call(deployed, "staking::set_token_ttl", [deployed.admin_cap, deployed.admin_cap, 5])
    error = executed.effects.status.error
    assert error.kind == rpc.ExecutionErrorExecutionErrorKind.COMMAND_ARGUMENT_ERROR and error.command == 0
    assert error.command_argument_error.argument == 0
    assert error.command_argument_error.kind == rpc.CommandArgumentErrorCommandArgumentErrorKind.TYPE_MISMATCH
