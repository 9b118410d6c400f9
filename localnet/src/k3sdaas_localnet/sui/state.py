"""The chain's state in SQLite: live objects, packages, transactions, checkpoints and events.

Every read goes to the database, so several node processes (or the faucet CLI) on one state
directory see one chain; writers serialise on SQLite's write lock (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .objects import LiveObject, Owner, decode_value, encode_value

DB_FILE = "chain.sqlite3"
EPOCH = 1  # the stand-in never changes epoch

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    id TEXT PRIMARY KEY, version INTEGER NOT NULL, digest TEXT NOT NULL, type TEXT NOT NULL,
    owner_kind TEXT NOT NULL, owner_address TEXT, initial_shared_version INTEGER,
    fields TEXT NOT NULL, package TEXT, previous_transaction TEXT NOT NULL,
    storage_rebate INTEGER NOT NULL, has_public_transfer INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_by_owner ON objects (owner_address, type);
CREATE TABLE IF NOT EXISTS packages (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
    digest TEXT PRIMARY KEY, checkpoint INTEGER NOT NULL, sender TEXT NOT NULL, body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    sequence_number INTEGER PRIMARY KEY, digest TEXT NOT NULL, timestamp_ms INTEGER NOT NULL,
    transaction_digest TEXT
);
CREATE TABLE IF NOT EXISTS events (
    checkpoint INTEGER NOT NULL, event_index INTEGER NOT NULL, transaction_digest TEXT NOT NULL,
    event_type TEXT NOT NULL, sender TEXT NOT NULL, package_id TEXT NOT NULL, module TEXT NOT NULL,
    body BLOB NOT NULL, PRIMARY KEY (checkpoint, event_index)
);
"""


@dataclass(frozen=True)
class CheckpointRow:
    sequence_number: int
    digest: str
    timestamp_ms: int
    transaction_digest: str | None


@dataclass(frozen=True)
class EventRow:
    checkpoint: int
    event_index: int
    transaction_digest: str
    event_type: str
    sender: str
    package_id: str
    module: str
    body: bytes


def _row_to_object(row: sqlite3.Row) -> LiveObject:
    owner = Owner(row["owner_kind"], row["owner_address"], row["initial_shared_version"])
    return LiveObject(
        id=row["id"],
        type=row["type"],
        fields=decode_value(json.loads(row["fields"])),
        owner=owner,
        version=row["version"],
        digest=row["digest"],
        previous_transaction=row["previous_transaction"],
        storage_rebate=row["storage_rebate"],
        has_public_transfer=bool(row["has_public_transfer"]),
        package=json.loads(row["package"]) if row["package"] else None,
    )


class ChainState:
    """One SQLite database per state directory; each ChainState is one connection."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / DB_FILE
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes, not power loss
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def write(self) -> Iterator[None]:
        """One atomic write transaction, exclusive against other writers."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # meta
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # objects
    def get_object(self, object_id: str) -> LiveObject | None:
        row = self._db.execute("SELECT * FROM objects WHERE id = ?", (object_id,)).fetchone()
        return None if row is None else _row_to_object(row)

    def owned_objects(self, owner: str, type_prefix: str | None, after_id: str, limit: int) -> list[LiveObject]:
        sql = "SELECT * FROM objects WHERE owner_kind = 'ADDRESS' AND owner_address = ? AND id > ?"
        params: list[Any] = [owner, after_id]
        if type_prefix is not None:
            sql += " AND (type = ? OR type LIKE ? ESCAPE '\\')"
            like = type_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "<%"
            params += [type_prefix, like]
        sql += " ORDER BY id LIMIT ?"
        params.append(limit)
        return [_row_to_object(r) for r in self._db.execute(sql, params)]

    def children(self, parent: str, after_id: str, limit: int) -> list[LiveObject]:
        """Objects owned by the object ``parent`` (its dynamic fields), in id order after ``after_id``."""
        rows = self._db.execute(
            "SELECT * FROM objects WHERE owner_kind = 'OBJECT' AND owner_address = ? AND id > ? ORDER BY id LIMIT ?",
            (parent, after_id, limit),
        )
        return [_row_to_object(r) for r in rows]

    def legacy_table_rows(self) -> list[tuple[str, str, int, str, dict[str, Any]]]:
        """(id, type, version, previous transaction, raw fields) of objects whose tables still hold their
        entries inline, as states written before tables became dynamic-field objects do."""
        rows = self._db.execute(
            "SELECT id, type, version, previous_transaction, fields FROM objects WHERE fields LIKE '%\"entries\"%'"
        )
        return [(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def put_raw_fields(self, object_id: str, fields: dict[str, Any]) -> None:
        self._db.execute("UPDATE objects SET fields = ? WHERE id = ?", (json.dumps(fields), object_id))

    def put_object(self, obj: LiveObject) -> None:
        assert obj.owner is not None, f"object {obj.id} has no owner"
        self._db.execute(
            "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                obj.id, obj.version, obj.digest, obj.type, obj.owner.kind, obj.owner.address,
                obj.owner.initial_shared_version, json.dumps(encode_value(obj.fields)),
                json.dumps(obj.package) if obj.package else None, obj.previous_transaction,
                obj.storage_rebate, int(obj.has_public_transfer),
            ),
        )

    def delete_object(self, object_id: str) -> None:
        self._db.execute("DELETE FROM objects WHERE id = ?", (object_id,))

    # packages
    def put_package(self, package_id: str, name: str) -> None:
        """Bind a published package id to the handler table ``name`` (its object is in ``objects``)."""
        self._db.execute("INSERT OR REPLACE INTO packages VALUES (?, ?)", (package_id, name))

    def packages(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self._db.execute("SELECT id, name FROM packages")]

    # transactions and checkpoints
    def get_transaction(self, digest: str) -> bytes | None:
        row = self._db.execute("SELECT body FROM transactions WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else bytes(row[0])

    def put_transaction(self, digest: str, checkpoint: int, sender: str, body: bytes) -> None:
        self._db.execute("INSERT INTO transactions VALUES (?, ?, ?, ?)", (digest, checkpoint, sender, body))

    def latest_checkpoint(self) -> CheckpointRow | None:
        row = self._db.execute("SELECT * FROM checkpoints ORDER BY sequence_number DESC LIMIT 1").fetchone()
        return None if row is None else CheckpointRow(*row)

    def checkpoint(self, *, sequence_number: int | None = None, digest: str | None = None) -> CheckpointRow | None:
        if digest is not None:
            row = self._db.execute("SELECT * FROM checkpoints WHERE digest = ?", (digest,)).fetchone()
        else:
            row = self._db.execute("SELECT * FROM checkpoints WHERE sequence_number = ?", (sequence_number,)).fetchone()
        return None if row is None else CheckpointRow(*row)

    def checkpoints_after(self, sequence_number: int, limit: int = 1000) -> list[CheckpointRow]:
        rows = self._db.execute(
            "SELECT * FROM checkpoints WHERE sequence_number > ? ORDER BY sequence_number LIMIT ?",
            (sequence_number, limit),
        )
        return [CheckpointRow(*r) for r in rows]

    def put_checkpoint(self, row: CheckpointRow) -> None:
        self._db.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?)",
                         (row.sequence_number, row.digest, row.timestamp_ms, row.transaction_digest))

    # events
    def put_event(self, row: EventRow) -> None:
        self._db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (row.checkpoint, row.event_index, row.transaction_digest, row.event_type, row.sender,
                          row.package_id, row.module, row.body))

    def events(self, start_checkpoint: int, end_checkpoint: int | None, after: tuple[int, int] | None,
               descending: bool = False) -> Iterator[EventRow]:
        sql = "SELECT * FROM events WHERE checkpoint >= ?"
        params: list[Any] = [start_checkpoint]
        if end_checkpoint is not None:
            sql += " AND checkpoint < ?"
            params.append(end_checkpoint)
        if after is not None:
            sql += (" AND (checkpoint, event_index) < (?, ?)" if descending
                    else " AND (checkpoint, event_index) > (?, ?)")
            params += list(after)
        sql += " ORDER BY checkpoint DESC, event_index DESC" if descending else " ORDER BY checkpoint, event_index"
        for r in self._db.execute(sql, params).fetchall():
            yield EventRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bytes(r[7]))


def now_ms(state: ChainState) -> int:
    """The chain clock: wall time plus a test-controlled offset (``clock_offset_ms`` in meta)."""
    return int(time.time() * 1000) + int(state.get_meta("clock_offset_ms") or 0)
