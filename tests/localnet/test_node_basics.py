"""The node through unmodified pysui client code: reads, coins, transfers, rejections, restarts."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import base58
import pysui.sui.sui_common.sui_commands as cmd
from grpclib.const import Status
from pysui.sui.sui_grpc import pgrpc_requests as rn
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as rpc

from k3sdaas_localnet.sui.gas import REFERENCE_GAS_PRICE
from k3sdaas_localnet.sui.movetypes import COIN_TYPE
from k3sdaas_localnet.sui.testing import LocalNode, make_account, running_node

SUI = 1_000_000_000


async def test_client_init_reads_epoch_and_chain_id(chain) -> None:
    assert chain.client.current_gas_price == REFERENCE_GAS_PRICE
    epoch = await chain.client.execute(command=cmd.GetBasicCurrentEpochInfo())
    assert epoch.is_ok() and epoch.result_data.reference_gas_price == REFERENCE_GAS_PRICE
    chain_id = await chain.client.execute(command=cmd.GetChainIdentifier())
    assert chain_id.is_ok()
    assert len(chain_id.result_data) in (43, 44)


async def test_faucet_coins_are_listed_and_summed(chain, node: LocalNode) -> None:
    node.faucet(chain.account.address, 7 * SUI)
    gas = await chain.client.execute_for_all(command=cmd.GetGas(owner=chain.account.address))
    assert gas.is_ok(), gas.result_string
    assert sorted(o.balance for o in gas.result_data.objects) == [7 * SUI, 100 * SUI]
    assert all(o.object_type == COIN_TYPE and o.version > 0 for o in gas.result_data.objects)
    balance = await chain.client.execute(command=cmd.GetAddressCoinBalance(owner=chain.account.address))
    assert balance.result_data.balance.balance == 107 * SUI


async def test_split_and_transfer_moves_sui_and_charges_gas(chain, bob) -> None:
    txn = await chain.client.transaction()
    coin = await txn.split_coin(coin=txn.gas, amounts=[3 * SUI])
    await txn.transfer_objects(transfers=[coin], recipient=bob.address)
    executed = await chain.execute(txn)

    assert executed.effects.status.success
    changes = {c.address: int(c.amount) for c in executed.balance_changes}
    gas = executed.effects.gas_used
    net_gas = gas.computation_cost + gas.storage_cost - gas.storage_rebate
    assert changes == {bob.address: 3 * SUI, chain.account.address: -(3 * SUI + net_gas)}
    new_coin = chain.created(
        executed, "::coin::Coin<0x0000000000000000000000000000000000000000000000000000000000000002::sui::SUI>",
    )
    assert len(new_coin) == 1
    obj = await chain.object(new_coin[0])
    assert obj.owner.kind == rpc.OwnerOwnerKind.ADDRESS and obj.owner.address == bob.address
    assert obj.json.to_dict() == {"id": new_coin[0], "balance": str(3 * SUI)}
    assert obj.version == executed.effects.lamport_version
    fetched = await chain.client.execute(command=cmd.GetTransaction(digest=executed.digest))
    assert fetched.result_data.effects.transaction_digest == executed.digest
    commands = fetched.result_data.transaction.kind.programmable_transaction.commands
    assert commands[0].split_coins is not None and commands[1].transfer_objects is not None


async def test_resubmitting_the_same_bytes_is_idempotent(chain, bob) -> None:
    txn = await chain.client.transaction()
    await txn.transfer_sui(recipient=bob.address, from_coin=txn.gas, amount=SUI)
    signed = await txn.build_and_sign()
    first = await chain.client.execute(command=cmd.ExecuteTransaction(**signed))
    again = await chain.client.execute(command=cmd.ExecuteTransaction(**signed))
    assert first.is_ok() and again.is_ok()
    assert again.result_data.digest == first.result_data.digest
    preimage = b"TransactionData::" + base64.b64decode(signed["tx_bytestr"])
    assert first.result_data.digest == base58.b58encode(hashlib.blake2b(preimage, digest_size=32).digest()).decode()
    balance = await chain.client.execute(command=cmd.GetAddressCoinBalance(owner=bob.address))
    assert balance.result_data.balance.balance == 101 * SUI


async def test_tampered_signature_is_rejected(chain, bob) -> None:
    txn = await chain.client.transaction()
    await txn.transfer_sui(recipient=bob.address, from_coin=txn.gas, amount=SUI)
    signed = await txn.build_and_sign()
    sig = bytearray(base64.b64decode(signed["sig_array"][0]))
    sig[10] ^= 0x01
    result = await chain.client.execute(command=cmd.ExecuteTransaction(
        tx_bytestr=signed["tx_bytestr"], sig_array=[base64.b64encode(bytes(sig)).decode()]))
    assert not result.is_ok()
    assert Status.INVALID_ARGUMENT in result.result_string and "signature" in str(result.result_string)
    balance = await chain.client.execute(command=cmd.GetAddressCoinBalance(owner=bob.address))
    assert balance.result_data.balance.balance == 100 * SUI


async def test_signature_by_another_key_is_rejected(chain, bob) -> None:
    txn = await chain.client.transaction()
    await txn.transfer_sui(recipient=bob.address, from_coin=txn.gas, amount=SUI)
    tx_bytes = await txn.build()
    other = bob.config.keypair_for_address(address=bob.address).new_sign_secure(tx_bytes)
    result = await chain.client.execute(command=cmd.ExecuteTransaction(tx_bytestr=tx_bytes, sig_array=[other]))
    assert not result.is_ok() and "sender" in str(result.result_string)


async def test_stale_gas_coin_version_is_rejected(chain, bob) -> None:
    first = await chain.client.transaction()
    await first.transfer_sui(recipient=bob.address, from_coin=first.gas, amount=SUI)
    signed_first = await first.build_and_sign()
    second = await chain.client.transaction()
    await second.transfer_sui(recipient=bob.address, from_coin=second.gas, amount=2 * SUI)
    signed_second = await second.build_and_sign()  # same gas coin, same version as the first

    assert (await chain.client.execute(command=cmd.ExecuteTransaction(**signed_first))).is_ok()
    stale = await chain.client.execute(command=cmd.ExecuteTransaction(**signed_second))
    assert not stale.is_ok()
    assert "version" in str(stale.result_string)


async def test_unserved_rpc_answers_unimplemented(chain, node: LocalNode) -> None:
    result = await chain.client.execute_grpc_request(request=rn.GetNameServiceAddress(name="alice.sui"))
    assert not result.is_ok()
    assert Status.UNIMPLEMENTED in result.result_string
    assert ("/sui.rpc.v2.NameService/LookupName", "UNIMPLEMENTED") in node.service_log()


async def test_missing_object_is_not_found(chain) -> None:
    result = await chain.client.execute(command=cmd.GetObject(object_id="0x" + "12" * 32))
    assert not result.is_ok() and Status.NOT_FOUND in result.result_string


async def test_restart_with_the_same_state_keeps_the_chain(tmp_path: Path) -> None:
    state = tmp_path / "chain"
    with running_node(state) as first:
        alice = make_account(first, tmp_path / "alice")
        first.faucet(alice.address, 5 * SUI)
        async with alice.client() as client:
            chain_id = (await client.execute(command=cmd.GetChainIdentifier())).result_data
            txn = await client.transaction()
            await txn.transfer_sui(recipient="0x" + "cd" * 32, from_coin=txn.gas, amount=SUI)
            signed = await txn.build_and_sign()
            digest = (await client.execute(command=cmd.ExecuteTransaction(**signed))).result_data.digest
    with running_node(state) as second:
        assert second.ca_path == first.ca_path
        alice_again = make_account(second, tmp_path / "alice2")  # new key; the old one still owns the coin
        async with alice_again.client() as client:
            assert (await client.execute(command=cmd.GetChainIdentifier())).result_data == chain_id
            tx = await client.execute(command=cmd.GetTransaction(digest=digest))
            assert tx.result_data.effects.status.success
            balance = await client.execute(command=cmd.GetAddressCoinBalance(owner="0x" + "cd" * 32))
            assert balance.result_data.balance.balance == SUI
