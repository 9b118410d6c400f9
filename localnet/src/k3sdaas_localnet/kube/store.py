"""Objects in SQLite, one global resourceVersion counter, and the recent changes watches replay.

Objects are keyed by (resource, namespace, name); ``resource`` is ``group/plural`` (``/pods`` for the
core group). The change log lives in memory only: a watch from a resourceVersion older than it (after a
restart, say) gets ``410 Expired`` and the client lists again, as with an etcd compaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WATCH_LOG_SIZE = 10_000


@dataclass(frozen=True)
class Change:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    resource: str
    namespace: str
    obj: dict[str, Any]


class Conflict(Exception):
    """A write with a stale resourceVersion, or a create of an existing name."""


def now_rfc3339(micro: bool = False) -> str:
    stamp = dt.datetime.now(dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if micro else stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(stamp: object) -> dt.datetime | None:
    """An RFC 3339 timestamp as an aware datetime (UTC when it names no zone); None when it is not one."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        parsed = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


class Store:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS objects (resource TEXT, namespace TEXT, name TEXT, rv INTEGER,"
                        " body TEXT, PRIMARY KEY (resource, namespace, name))")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        row = self.db.execute("SELECT value FROM meta WHERE key='rv'").fetchone()
        self.rv = int(row[0]) if row else 1
        self.log: deque[Change] = deque(maxlen=WATCH_LOG_SIZE)
        self.changed = asyncio.Event()  # set, then replaced, on every write: watches wait on it
        self.started_rv = self.rv

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT body FROM objects WHERE resource=? AND namespace=? AND name=?",
                              (resource, namespace, name)).fetchone()
        return json.loads(row[0]) if row else None

    def objects(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        if namespace is None:
            rows = self.db.execute("SELECT body FROM objects WHERE resource=? ORDER BY namespace, name", (resource,))
        else:
            rows = self.db.execute("SELECT body FROM objects WHERE resource=? AND namespace=? ORDER BY name",
                                   (resource, namespace))
        return [json.loads(body) for (body,) in rows]

    def namespaced_resources(self, namespace: str) -> list[tuple[str, str]]:
        return list(self.db.execute("SELECT resource, name FROM objects WHERE namespace=?", (namespace,)))

    def _next_rv(self) -> int:
        self.rv += 1
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('rv', ?)", (str(self.rv),))
        return self.rv

    def _record(self, change: Change) -> None:
        self.log.append(change)
        self.changed.set()
        self.changed = asyncio.Event()

    def create(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        namespace = meta.get("namespace", "")
        if self.get(resource, namespace, meta["name"]) is not None:
            raise Conflict("exists")
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339())
        if "spec" in obj:
            meta.setdefault("generation", 1)
        for key in ("resourceVersion", "deletionTimestamp", "selfLink"):
            meta.pop(key, None)
        return self._write(resource, namespace, obj, "ADDED")

    def update(self, resource: str, obj: dict[str, Any], expected_rv: str | None) -> dict[str, Any]:
        """Replace an object; ``expected_rv`` (if any) must be the stored one, else Conflict."""
        meta = obj["metadata"]
        namespace = meta.get("namespace", "")
        current = self.get(resource, namespace, meta["name"])
        if current is None:
            raise KeyError(meta["name"])
        if expected_rv and expected_rv != current["metadata"]["resourceVersion"]:
            raise Conflict("stale")
        for key in ("uid", "creationTimestamp"):
            meta[key] = current["metadata"][key]
        if "spec" in obj and obj.get("spec") != current.get("spec"):
            meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
        elif "generation" in current["metadata"]:
            meta["generation"] = current["metadata"]["generation"]
        if {**obj, "metadata": {**meta, "resourceVersion": current["metadata"]["resourceVersion"]}} == current:
            return current  # a no-op write keeps its resourceVersion, as in kube-apiserver
        return self._write(resource, namespace, obj, "MODIFIED")

    def _write(self, resource: str, namespace: str, obj: dict[str, Any], kind: str) -> dict[str, Any]:
        rv = self._next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        self.db.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)",
                        (resource, namespace, obj["metadata"]["name"], rv, json.dumps(obj)))
        self._record(Change(rv, kind, resource, namespace, obj))
        return obj

    def delete(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.get(resource, namespace, name)
        if obj is None:
            return None
        self.db.execute("DELETE FROM objects WHERE resource=? AND namespace=? AND name=?", (resource, namespace, name))
        obj["metadata"]["resourceVersion"] = str(self._next_rv())
        self._record(Change(self.rv, "DELETED", resource, namespace, obj))
        return obj

    def changes_since(self, rv: int) -> list[Change] | None:
        """Changes after ``rv``, or None when ``rv`` is older than what the log still holds."""
        if rv < self.started_rv or (len(self.log) == self.log.maxlen and rv < self.log[0].rv - 1):
            return None
        return [c for c in self.log if c.rv > rv]
