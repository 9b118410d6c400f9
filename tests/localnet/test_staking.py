"""k3s_daas::staking on the stand-in: publish, stake, read the token, aborts and the other entry points."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pysui.sui.sui_common.sui_commands as cmd
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as rpc

from k3sdaas_localnet.sui.handlers import staking
from k3sdaas_localnet.sui.publish import module_markers

SOURCES = Path(__file__).resolve().parents[2] / "move" / "sources"

SUI = 1_000_000_000
NODE = b"worker-1"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def abort_of(executed: rpc.ExecutedTransaction) -> tuple[str, str, int]:
    status = executed.effects.status
    assert not status.success
    abort = status.error.abort
    return abort.location.module, abort.location.function_name, abort.abort_code


async def test_publish_runs_init_and_registers_the_package(chain, deployed) -> None:
    admin = await chain.object(deployed.admin_cap)
    assert admin.owner.address == chain.account.address
    assert admin.object_type == f"{deployed.package}::staking::AdminCap"
    pool = await chain.object(deployed.pool)
    assert pool.owner.kind == rpc.OwnerOwnerKind.SHARED and pool.owner.version == pool.version
    fields = pool.json.to_dict()
    assert fields["staked"] == "0" and fields["token_ttl_ms"] == str(staking.DEFAULT_TOKEN_TTL_MS)
    assert fields["records"] == {"id": fields["records"]["id"], "size": "0"}
    registry = await chain.object(deployed.registry)
    assert registry.json.to_dict()["pcr_version"] == "0"
    cap = await chain.object(deployed.upgrade_cap)
    assert cap.json.to_dict()["package"] == deployed.package
    package = await chain.client.execute(command=cmd.GetPackage(package=deployed.package))
    assert package.is_ok(), package.result_string
    modules = {m.name: m for m in package.result_data.package.modules}
    assert set(modules) == {"staking", "registry", "k8s_gateway"}
    markers = module_markers("k3s_daas", SOURCES, list(modules))
    published = dict(zip(modules, markers, strict=True))
    assert all(modules[name].contents == published[name] for name in modules)
    assert {f.name for f in modules["staking"].functions} >= {"stake_and_mint_seal", "unstake", "tier"}


async def test_stake_and_mint_seal_creates_a_token_record_and_events(chain, deployed, bob) -> None:
    executed = await chain.stake(deployed, 2 * SUI, NODE, owner=bob.address)
    assert executed.effects.status.success, executed.effects.status.error
    token_id = chain.created(executed, "::staking::SealToken")[0]

    token = await chain.object(token_id)
    assert token.owner.address == bob.address
    assert token.json.to_dict() == {"id": token_id, "pool_id": deployed.pool, "node_id": b64(NODE)}
    assert not token.has_public_transfer
    pool = (await chain.object(deployed.pool)).json.to_dict()
    assert pool["staked"] == str(2 * SUI) and pool["records"]["size"] == "1" and pool["nodes"]["size"] == "1"

    events = {e.event_type.rsplit("::", 1)[1]: e for e in executed.events.events}
    assert set(events) == {"Staked", "SealMinted"}
    staked = events["Staked"].json.to_dict()
    assert staked["token_id"] == token_id and staked["owner"] == bob.address
    assert staked["staker"] == chain.account.address
    assert staked["amount"] == str(2 * SUI) and staked["tier"] == 2 and staked["node_id"] == b64(NODE)
    assert events["SealMinted"].json.to_dict() == {"token_id": token_id, "node_id": b64(NODE), "owner": bob.address}
    assert events["Staked"].module == "staking" and events["Staked"].sender == chain.account.address
    owned = await chain.client.execute_for_all(command=cmd.GetObjectsForType(
        owner=bob.address, object_type=f"{deployed.package}::staking::SealToken"))
    assert [o.object_id for o in owned.result_data.objects] == [token_id]


async def test_stake_below_minimum_aborts_with_estaketoolow_and_only_charges_gas(chain, deployed) -> None:
    before = (await chain.client.execute(command=cmd.GetAddressCoinBalance(owner=chain.account.address)))
    executed = await chain.stake(deployed, staking.TIERS[-1][0] - 1, NODE)
    # The check lives in the private helper open_record, which is where a real node locates the abort.
    assert abort_of(executed) == ("staking", "open_record", staking.ABORTS["EStakeTooLow"])
    assert executed.effects.status.error.kind == rpc.ExecutionErrorExecutionErrorKind.MOVE_ABORT
    assert "MoveAbort" in executed.effects.status.error.description
    assert not chain.created(executed, "::staking::SealToken")
    gas = executed.effects.gas_used
    after = (await chain.client.execute(command=cmd.GetAddressCoinBalance(owner=chain.account.address)))
    assert before.result_data.balance.balance - after.result_data.balance.balance == \
        gas.computation_cost + gas.storage_cost - gas.storage_rebate
    assert (await chain.object(deployed.pool)).json.to_dict()["staked"] == "0"


async def test_invalid_and_duplicate_node_ids_abort(chain, deployed) -> None:
    assert abort_of(await chain.stake(deployed, SUI, b"")) [2] == staking.ABORTS["EInvalidNodeId"]
    assert abort_of(await chain.stake(deployed, SUI, b"x" * 65))[2] == staking.ABORTS["EInvalidNodeId"]
    assert (await chain.stake(deployed, SUI, NODE)).effects.status.success
    assert abort_of(await chain.stake(deployed, SUI, NODE))[2] == staking.ABORTS["ENodeAlreadyStaked"]


async def test_refresh_add_stake_and_unstake(chain, deployed, node) -> None:
    token = chain.created(await chain.stake(deployed, SUI, NODE), "::staking::SealToken")[0]
    node.advance_clock(60_000)
    refreshed = await chain.call(deployed, "staking::refresh_seal_token", [deployed.pool, token, "0x6"])
    assert refreshed.effects.status.success
    assert refreshed.events.events[0].event_type.endswith("::staking::SealRefreshed")

    added = await chain.call(deployed, "staking::add_stake", [deployed.pool, token, "$coin", "0x6"], pay=9 * SUI)
    event = added.events.events[0].json.to_dict()
    assert event == {"token_id": token, "added": str(9 * SUI), "amount": str(10 * SUI), "tier": 4}

    unstaked = await chain.call(deployed, "staking::unstake", [deployed.pool, token, "0x6"])
    assert unstaked.effects.status.success, unstaked.effects.status.error
    assert unstaked.events.events[0].json.to_dict()["amount"] == str(10 * SUI)
    deleted = [c.object_id for c in unstaked.effects.changed_objects
               if c.id_operation == rpc.ChangedObjectIdOperation.DELETED]
    assert token in deleted
    refund = chain.created(
        unstaked, "::coin::Coin<0x0000000000000000000000000000000000000000000000000000000000000002::sui::SUI>",
    )
    assert (await chain.object(refund[0])).balance == 10 * SUI
    pool = (await chain.object(deployed.pool)).json.to_dict()
    assert pool["staked"] == "0" and pool["records"]["size"] == "0"


async def test_unstake_respects_the_cooldown(chain, deployed, node) -> None:
    cooldown = await chain.call(deployed, "staking::set_unstake_cooldown",
                                [deployed.pool, deployed.admin_cap, 3_600_000])
    assert cooldown.events.events[0].json.to_dict()["unstake_cooldown_ms"] == "3600000"
    token = chain.created(await chain.stake(deployed, SUI, NODE), "::staking::SealToken")[0]
    early = await chain.call(deployed, "staking::unstake", [deployed.pool, token, "0x6"])
    assert abort_of(early)[2] == staking.ABORTS["ECooldownActive"]
    node.advance_clock(3_600_001)
    assert (await chain.call(deployed, "staking::unstake", [deployed.pool, token, "0x6"])).effects.status.success


async def test_slash_moves_stake_to_penalties_and_lowers_the_tier(chain, deployed) -> None:
    token = chain.created(await chain.stake(deployed, 2 * SUI, NODE), "::staking::SealToken")[0]
    bad_bps = await chain.call(deployed, "staking::slash",
                               [deployed.pool, deployed.admin_cap, token, 10_001, b"bad", "0x6"])
    assert abort_of(bad_bps)[2] == staking.ABORTS["EInvalidBps"]
    slashed = await chain.call(deployed, "staking::slash",
                               [deployed.pool, deployed.admin_cap, token, 5_000, b"misbehaved", "0x6"])
    assert slashed.events.events[0].json.to_dict() == {
        "token_id": token, "node_id": b64(NODE), "bps": "5000", "penalty": str(SUI), "amount": str(SUI),
        "tier": 1, "reason": b64(b"misbehaved"),
    }
    pool = (await chain.object(deployed.pool)).json.to_dict()
    assert pool["penalties"] == str(SUI) and pool["staked"] == str(SUI)

    too_much = await chain.call(deployed, "staking::withdraw_penalties", [deployed.pool, deployed.admin_cap, 2 * SUI])
    assert abort_of(too_much)[2] == staking.ABORTS["EInsufficientPenalties"]
    withdrawn = await chain.call(deployed, "staking::withdraw_penalties", [deployed.pool, deployed.admin_cap, SUI])
    assert withdrawn.events.events[0].json.to_dict() == {"amount": str(SUI), "recipient": chain.account.address}


async def test_only_the_admin_cap_owner_can_call_admin_functions(deployed, bob) -> None:
    async with bob.client() as client:
        txn = await client.transaction()
        await txn.move_call(target=f"{deployed.package}::staking::set_token_ttl",
                            arguments=[deployed.pool, deployed.admin_cap, 1000])
        signed = await txn.build_and_sign(gas_budget=10_000_000)  # no simulation: the node itself must refuse
        result = await client.execute(command=cmd.ExecuteTransaction(**signed))
    assert not result.is_ok() and "not owned by the sender" in str(result.result_string)


async def test_zero_ttl_aborts(chain, deployed) -> None:
    executed = await chain.call(deployed, "staking::set_token_ttl", [deployed.pool, deployed.admin_cap, 0])
    assert abort_of(executed) == ("staking", "set_token_ttl", staking.ABORTS["EInvalidTtl"])


async def test_seal_token_has_no_public_transfer(chain, deployed, bob) -> None:
    token = chain.created(await chain.stake(deployed, SUI, NODE), "::staking::SealToken")[0]
    txn = await chain.client.transaction()
    await txn.transfer_objects(transfers=[token], recipient=bob.address)
    executed = await chain.execute(txn)
    assert not executed.effects.status.success
    assert executed.effects.status.error.kind == rpc.ExecutionErrorExecutionErrorKind.INVALID_TRANSFER_OBJECT
    assert (await chain.object(token)).owner.address == chain.account.address


async def test_concurrent_stakers_on_the_shared_pool_both_land(chain, deployed, bob) -> None:
    async with bob.client() as bob_client:

        async def bob_stakes() -> rpc.ExecutedTransaction:
            txn = await bob_client.transaction()
            coin = await txn.split_coin(coin=txn.gas, amounts=[SUI])
            await txn.move_call(target=f"{deployed.package}::staking::stake_and_mint_seal",
                                arguments=[deployed.pool, coin, b"bob-node", bob.address, "0x6"])
            signed = await txn.build_and_sign()
            result = await bob_client.execute(command=cmd.ExecuteTransaction(**signed))
            assert result.is_ok(), result.result_string
            return result.result_data

        mine, theirs = await asyncio.gather(chain.stake(deployed, SUI, b"alice-node"), bob_stakes())
    assert mine.effects.status.success and theirs.effects.status.success
    assert abs(mine.checkpoint - theirs.checkpoint) == 1  # one transaction per checkpoint, in some order
    pool = (await chain.object(deployed.pool)).json.to_dict()
    assert pool["records"]["size"] == "2" and pool["staked"] == str(2 * SUI)
