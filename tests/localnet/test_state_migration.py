"""A state written before Table entries became dynamic-field objects is migrated when a node opens it."""

from __future__ import annotations

import json
import sqlite3

from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2 as rpc

from k3sdaas.chain.dynamic_fields import derive_dynamic_field_id
from k3sdaas_localnet.sui.ledger import Ledger
from k3sdaas_localnet.sui.objects import decode_value, encode_value
from k3sdaas_localnet.sui.state import DB_FILE

SUI = 1_000_000_000


def inline_tables_as_before(db_path, pool_id: str) -> None:
    """Rewrite the state as the older stand-in stored it: entries inside the pool, no field objects."""
    db = sqlite3.connect(db_path, isolation_level=None)
    (raw,) = db.execute("SELECT fields FROM objects WHERE id = ?", (pool_id,)).fetchone()
    fields = json.loads(raw)
    for name in ("records", "nodes"):
        table_id = fields[name]["$table"]
        rows = db.execute("SELECT fields FROM objects WHERE owner_kind = 'OBJECT' AND owner_address = ?", (table_id,))
        entries = [decode_value(json.loads(r[0])) for r in rows]
        fields[name] = {"$table": table_id, "entries": [[encode_value(e["name"]), encode_value(e["value"])]
                                                         for e in entries]}
        db.execute("DELETE FROM objects WHERE owner_kind = 'OBJECT' AND owner_address = ?", (table_id,))
    db.execute("UPDATE objects SET fields = ? WHERE id = ?", (json.dumps(fields), pool_id))
    db.close()


async def test_inline_entries_become_field_objects(node, chain, deployed) -> None:
    executed = await chain.stake(deployed, 2 * SUI, b"old-node")
    token_id = chain.created(executed, "::staking::SealToken")[0]
    fields = (await chain.object(deployed.pool)).json.to_dict()
    record_id = derive_dynamic_field_id(fields["records"]["id"], "0x2::object::ID", bytes.fromhex(token_id[2:]))
    before = await chain.object(record_id)
    inline_tables_as_before(node.state_dir / DB_FILE, deployed.pool)

    Ledger(node.state_dir).close()  # opening the state migrates it

    after = await chain.object(record_id)
    assert after.json == before.json and after.owner.kind == rpc.OwnerOwnerKind.OBJECT
    assert after.contents.value == before.contents.value
    pool = (await chain.object(deployed.pool)).json.to_dict()
    assert pool["records"]["size"] == pool["nodes"]["size"] == "1"
    unstaked = await chain.call(deployed, "staking::unstake", [deployed.pool, token_id, "0x6"])
    assert unstaked.effects.status.success, unstaked.effects.status.error
