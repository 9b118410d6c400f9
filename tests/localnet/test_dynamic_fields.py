"""Table entries on the stand-in are dynamic-field objects, as on Sui: derived ids, BCS, ListDynamicFields."""

from __future__ import annotations

import pysui.sui.sui_grpc.pgrpc_requests as rn
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as rpc

from k3sdaas.chain.dynamic_fields import derive_dynamic_field_id

SUI = 1_000_000_000
NODE = b"worker-df"
FRAMEWORK = "0x" + "0" * 63 + "2"


async def raw(chain, request):
    result = await chain.client.execute_grpc_request(request=request)
    assert result.is_ok(), result.result_string
    return result.result_data


async def tables(chain, deployed) -> tuple[str, str]:
    fields = (await chain.object(deployed.pool)).json.to_dict()
    return fields["records"]["id"], fields["nodes"]["id"]


async def test_a_stake_writes_both_entries_as_field_objects_at_the_derived_ids(chain, deployed) -> None:
    executed = await chain.stake(deployed, 2 * SUI, NODE)
    token_id = chain.created(executed, "::staking::SealToken")[0]
    records, nodes = await tables(chain, deployed)
    record_id = derive_dynamic_field_id(records, "0x2::object::ID", bytes.fromhex(token_id[2:]))
    node_id = derive_dynamic_field_id(nodes, "vector<u8>", bytes([len(NODE)]) + NODE)
    created = {c.object_id: c for c in executed.effects.changed_objects
               if c.id_operation == rpc.ChangedObjectIdOperation.CREATED}
    assert {record_id, node_id} <= set(created)

    record = await chain.object(record_id)
    assert record.object_type == (f"{FRAMEWORK}::dynamic_field::Field<{FRAMEWORK}::object::ID, "
                                  f"{deployed.package}::staking::StakeRecord>")
    assert record.owner.kind == rpc.OwnerOwnerKind.OBJECT and record.owner.address == records
    contents = record.contents.value
    # Field { id: UID, name: ID, value: StakeRecord { node_id: vector<u8>, owner, staker, amount: u64, ... } }
    assert contents[:32].hex() == record_id[2:] and contents[32:64].hex() == token_id[2:]
    assert contents[64:65 + len(NODE)] == bytes([len(NODE)]) + NODE
    amount_at = 65 + len(NODE) + 64
    assert int.from_bytes(contents[amount_at:amount_at + 8], "little") == 2 * SUI
    assert record.json.to_dict()["value"]["amount"] == str(2 * SUI)

    node = await chain.object(node_id)
    assert node.contents.value == bytes.fromhex(node_id[2:]) + bytes([len(NODE)]) + NODE + bytes.fromhex(token_id[2:])
    pool = (await chain.object(deployed.pool)).json.to_dict()
    assert pool["records"]["size"] == "1" and pool["nodes"]["size"] == "1"


async def test_get_object_serves_the_object_bcs_and_honours_the_read_mask(chain, deployed) -> None:
    executed = await chain.stake(deployed, SUI, NODE)
    token_id = chain.created(executed, "::staking::SealToken")[0]
    records, _ = await tables(chain, deployed)
    field_id = derive_dynamic_field_id(records, "0x2::object::ID", bytes.fromhex(token_id[2:]))
    full = (await raw(chain, rn.GetObject(object_id=field_id, field_mask=["*"]))).object
    data = full.bcs.value
    contents = full.contents.value
    # Object { data: Data::Move(MoveObject { type_: Other(StructTag), has_public_transfer, version, contents }),
    #          owner: ObjectOwner(table), previous_transaction: digest, storage_rebate }
    assert data[0] == 0 and data[1] == 0 and data[2:34] == bytes(31) + b"\x02"
    tail = data[-(8 + 33 + 33):]
    assert tail[:33] == b"\x01" + bytes.fromhex(records[2:])  # ObjectOwner(records table)
    assert int.from_bytes(tail[-8:], "little") == full.storage_rebate
    assert contents in data

    # pysui's default mask names json, owner, type...: not the BCS, which a full node then leaves out
    default = (await raw(chain, rn.GetObject(object_id=field_id))).object
    assert default.object_id == field_id and default.version == full.version and default.json == full.json
    assert default.contents is None and default.bcs is None and default.storage_rebate is None
    masked = (await raw(chain, rn.GetObject(object_id=field_id, field_mask=["contents"]))).object
    assert masked.contents.value == contents and masked.object_type is None


async def test_list_dynamic_fields_pages_a_tables_entries_and_unstake_deletes_them(chain, deployed) -> None:
    tokens = []
    for index in range(3):
        executed = await chain.stake(deployed, SUI, b"node-%d" % index)
        tokens.append(chain.created(executed, "::staking::SealToken")[0])
    records, nodes = await tables(chain, deployed)

    async def listing(parent: str) -> list[rpc.DynamicField]:
        fields, token = [], None
        while True:
            page = await raw(chain, rn.GetDynamicFields(object_id=parent, page_size=2, page_token=token))
            fields += page.dynamic_fields
            token = page.next_page_token
            if not token:
                return fields

    listed = await listing(records)
    assert sorted(f.name.value.hex() for f in listed) == sorted(t[2:] for t in tokens)
    assert all(f.kind == rpc.DynamicFieldDynamicFieldKind.FIELD and f.parent == records for f in listed)
    assert all(f.value_type == f"{deployed.package}::staking::StakeRecord" for f in listed)
    assert [f.field_id for f in listed] == sorted(f.field_id for f in listed)
    by_node = {bytes(f.name.value[1:]): f.value.value.hex() for f in await listing(nodes)}
    assert by_node == {b"node-%d" % i: tokens[i][2:] for i in range(3)}

    unstaked = await chain.call(deployed, "staking::unstake", [deployed.pool, tokens[0], "0x6"])
    assert unstaked.effects.status.success, unstaked.effects.status.error
    deleted = {c.object_id for c in unstaked.effects.changed_objects
               if c.id_operation == rpc.ChangedObjectIdOperation.DELETED}
    gone = derive_dynamic_field_id(records, "0x2::object::ID", bytes.fromhex(tokens[0][2:]))
    assert gone in deleted and len(await listing(records)) == 2 and len(await listing(nodes)) == 2
    missing = await chain.client.execute_grpc_request(request=rn.GetObject(object_id=gone))
    assert not missing.is_ok()


async def test_a_slash_writes_only_the_record_field_and_the_pool(chain, deployed) -> None:
    executed = await chain.stake(deployed, 2 * SUI, NODE)
    token_id = chain.created(executed, "::staking::SealToken")[0]
    records, nodes = await tables(chain, deployed)
    slashed = await chain.call(deployed, "staking::slash",
                               [deployed.pool, deployed.admin_cap, token_id, 1000, b"why", "0x6"])
    assert slashed.effects.status.success, slashed.effects.status.error
    written = {c.object_id for c in slashed.effects.changed_objects}
    record_id = derive_dynamic_field_id(records, "0x2::object::ID", bytes.fromhex(token_id[2:]))
    node_id = derive_dynamic_field_id(nodes, "vector<u8>", bytes([len(NODE)]) + NODE)
    assert record_id in written and deployed.pool in written and node_id not in written
    record = await chain.object(record_id)
    assert record.version == slashed.effects.lamport_version
    assert record.json.to_dict()["value"]["amount"] == str(2 * SUI - 2 * SUI // 10)
