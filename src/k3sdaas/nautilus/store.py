"""The master's state in SQLite: nodes, single-use nonces, token and session revocations.

What an operator or an attacker with the disk could learn is encrypted: each row's payload
(a node's token, address, tier, IP, capacity and metrics; a revocation's reason) is an AES-GCM blob
under the data key of a ``KeyProvider``, with a random 96-bit nonce and ``[table, row id, column]`` as
associated data, so a blob moved to another row or column fails to decrypt. Nonces are stored as an
HMAC under a key derived from the data key, so a nonce cannot be planted without the key. Kept in the
clear, because queries need them: node ids, times, and revoked token and session ids (all of which
the chain or the session itself shows anyway). Deleting rows, or putting back an older copy of the
whole file, is not detected: the chain stays the source of truth (every login reads the token there).

A key check row written with the first key makes a wrong key fail at open with ``StateKeyError``
instead of yielding garbage later. One connection behind a lock serves all threads; WAL journaling
keeps a heartbeat (one UPDATE) in the tens of microseconds. Times are integer milliseconds since the
epoch, like the chain's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import InvalidInput, K3sdaasError
from .keys import KEY_BYTES, KeyProvider, StateKeyError

SCHEMA_VERSION = 1
BLOB_VERSION = b"\x01"
MAX_JSON_BYTES = 8192  # capacity or metrics of one node
MAX_ID_CHARS = 256
MAX_TEXT_CHARS = 1024
DEFAULT_MAX_NONCES = 100_000  # outstanding challenges; more means someone is flooding /challenge
_CHECK = b"k3sdaas state key check"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY, registered_at_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
    identity BLOB NOT NULL, metrics BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS nonces (mac BLOB PRIMARY KEY, expires_at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at_ms);
CREATE TABLE IF NOT EXISTS revocations (token_id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL, reason BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS revoked_sessions (
    session_id TEXT PRIMARY KEY, expires_at_ms INTEGER NOT NULL, at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS revoked_sessions_expiry ON revoked_sessions (expires_at_ms);
"""


class StoreError(K3sdaasError):
    """The database is unusable: a row fails authentication, or the schema is of another version."""


class StoreFull(StoreError):
    """Too many outstanding nonces; the caller should answer 503 and let them expire."""

    retryable = True


@dataclass(frozen=True)
class Node:
    node_id: str
    token_id: str
    address: str
    tier: int
    ip: str
    capacity: dict[str, Any]
    registered_at_ms: int
    last_seen_ms: int
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Revocation:
    token_id: str
    reason: str
    at_ms: int


def _text(value: object, name: str, limit: int = MAX_ID_CHARS) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise InvalidInput(f"{name} must be a string of 1 to {limit} characters", field=name)
    return value


def _ms(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**16:
        raise InvalidInput(f"{name} must be integer milliseconds since the epoch, got {value!r}", field=name)
    return value


def _json(value: object, name: str) -> bytes:
    if not isinstance(value, dict):
        raise InvalidInput(f"{name} must be a JSON object", field=name)
    try:
        data = json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must hold only JSON values", field=name) from None
    if len(data) > MAX_JSON_BYTES:
        raise InvalidInput(f"{name} is {len(data)} bytes of JSON, more than the {MAX_JSON_BYTES} accepted", field=name)
    return data


def _aad(table: str, row: str, column: str) -> bytes:
    """Associated data naming the blob's place; JSON so no row id can pass for another place."""
    return json.dumps([table, row, column]).encode()


class StateStore:
    """Open (creating if needed) the state database at ``path``, encrypted under ``keys``' data key."""

    def __init__(self, path: str | os.PathLike[str], keys: KeyProvider, *,
                 max_nonces: int = DEFAULT_MAX_NONCES) -> None:
        if isinstance(max_nonces, bool) or not isinstance(max_nonces, int) or not 0 < max_nonces <= 10**7:
            raise InvalidInput("max_nonces must be an integer from 1 to 10,000,000", field="max_nonces")
        self.path = Path(path)
        self.max_nonces = max_nonces
        key = keys.data_key(self.path)
        if len(key) != KEY_BYTES:
            raise StateKeyError(f"the data key for {str(self.path)!r} must be {KEY_BYTES} bytes")
        self._aead = AESGCM(key)
        self._nonce_key = hmac.digest(key, b"k3sdaas nonce mac", hashlib.sha256)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))  # created 0600 before sqlite opens it
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"state database {str(self.path)!r} cannot be opened: {exc}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash of the process loses nothing
            self._db.execute("PRAGMA busy_timeout=5000")
            with self._transaction() as db:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                self._check_key(db)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"state database {str(self.path)!r} cannot be opened: {exc}") from None
        except BaseException:  # a wrong key or schema: do not leave the connection open
            self._db.close()
            raise

    # -- plumbing ---------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _seal(self, data: bytes, table: str, row: str, column: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return BLOB_VERSION + nonce + self._aead.encrypt(nonce, data, _aad(table, row, column))

    def _open(self, blob: bytes, table: str, row: str, column: str) -> bytes:
        if blob[:1] != BLOB_VERSION or len(blob) < 29:
            raise StoreError(f"state database {str(self.path)!r}: {table} row {row!r} {column} is not a sealed value")
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], _aad(table, row, column))
        except InvalidTag:
            raise StoreError(f"state database {str(self.path)!r}: {table} row {row!r} {column} fails authentication "
                             "(tampered with, or moved from another row)") from None

    def _check_key(self, db: sqlite3.Connection) -> None:
        version = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        if version is None:
            db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            db.execute("INSERT INTO meta VALUES ('key_check', ?)", (self._seal(_CHECK, "meta", "key_check", "value"),))
            return
        if version[0] != SCHEMA_VERSION:
            raise StoreError(f"state database {str(self.path)!r} has schema version {version[0]}; this master "
                             f"reads version {SCHEMA_VERSION}")
        check = db.execute("SELECT value FROM meta WHERE name = 'key_check'").fetchone()
        try:
            self._open(check[0] if check else b"", "meta", "key_check", "value")
        except StoreError:
            raise StateKeyError(f"the data key does not open state database {str(self.path)!r} (it was written "
                                "with another key)") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- nodes ------------------------------------------------------------------------------------

    def register_node(self, node: Node) -> None:
        """Insert or replace the node's record (a re-registration starts it afresh)."""
        node_id = _text(node.node_id, "node_id")
        if isinstance(node.tier, bool) or not isinstance(node.tier, int):
            raise InvalidInput("tier must be an integer", field="tier")
        _json(node.capacity, "capacity")
        identity = {"token_id": _text(node.token_id, "token_id"), "address": _text(node.address, "address"),
                    "tier": node.tier, "ip": _text(node.ip, "ip"), "capacity": node.capacity}
        row = (node_id, _ms(node.registered_at_ms, "registered_at_ms"), _ms(node.last_seen_ms, "last_seen_ms"),
               self._seal(_json(identity, "node"), "nodes", node_id, "identity"),
               self._seal(_json(node.metrics, "metrics"), "nodes", node_id, "metrics"))
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO nodes VALUES (?, ?, ?, ?, ?)", row)

    def heartbeat(self, node_id: str, now_ms: int, metrics: dict[str, Any]) -> bool:
        """Record that the node is alive, with its metrics summary; False for an unknown node."""
        node_id = _text(node_id, "node_id")
        blob = self._seal(_json(metrics, "metrics"), "nodes", node_id, "metrics")
        with self._lock:  # one statement: sqlite makes it atomic without an explicit transaction
            cursor = self._db.execute("UPDATE nodes SET last_seen_ms = ?, metrics = ? WHERE node_id = ?",
                                      (_ms(now_ms, "now_ms"), blob, node_id))
        return cursor.rowcount == 1

    def node(self, node_id: str) -> Node | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM nodes WHERE node_id = ?", (_text(node_id, "node_id"),)).fetchone()
        return None if row is None else self._node(row)

    def nodes(self) -> list[Node]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM nodes ORDER BY node_id").fetchall()
        return [self._node(row) for row in rows]

    def remove_node(self, node_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute("DELETE FROM nodes WHERE node_id = ?", (_text(node_id, "node_id"),))
        return cursor.rowcount == 1

    def _node(self, row: tuple[Any, ...]) -> Node:
        node_id, registered, last_seen, identity, metrics = row
        fields = json.loads(self._open(identity, "nodes", node_id, "identity"))
        return Node(node_id=node_id, registered_at_ms=registered, last_seen_ms=last_seen,
                    metrics=json.loads(self._open(metrics, "nodes", node_id, "metrics")), **fields)

    # -- nonces -----------------------------------------------------------------------------------

    def _mac(self, nonce: str) -> bytes:
        return hmac.digest(self._nonce_key, _text(nonce, "nonce").encode(), hashlib.sha256)

    def add_nonce(self, nonce: str, now_ms: int, ttl_ms: int) -> None:
        """Store a fresh challenge nonce valid for ``ttl_ms``; expired ones are dropped on the way."""
        now, ttl = _ms(now_ms, "now_ms"), _ms(ttl_ms, "ttl_ms")
        with self._transaction() as db:
            db.execute("DELETE FROM nonces WHERE expires_at_ms <= ?", (now,))
            (count,) = db.execute("SELECT count(*) FROM nonces").fetchone()
            if count >= self.max_nonces:
                raise StoreFull(f"{count} challenges are outstanding, the most this master keeps; retry shortly")
            db.execute("INSERT INTO nonces VALUES (?, ?)", (self._mac(nonce), now + ttl))

    def consume_nonce(self, nonce: str, now_ms: int) -> bool:
        """True exactly once for a stored, unexpired nonce; the DELETE makes it single use atomically."""
        mac, now = self._mac(nonce), _ms(now_ms, "now_ms")
        with self._lock:
            cursor = self._db.execute("DELETE FROM nonces WHERE mac = ? AND expires_at_ms > ?", (mac, now))
        return cursor.rowcount == 1

    # -- revocations ------------------------------------------------------------------------------

    def revoke_token(self, token_id: str, reason: str, at_ms: int) -> None:
        token_id = _text(token_id, "token_id")
        blob = self._seal(_text(reason, "reason", MAX_TEXT_CHARS).encode(), "revocations", token_id, "reason")
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO revocations VALUES (?, ?, ?)",
                             (token_id, _ms(at_ms, "at_ms"), blob))

    def unrevoke_token(self, token_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute("DELETE FROM revocations WHERE token_id = ?", (_text(token_id, "token_id"),))
        return cursor.rowcount == 1

    def revocation_list(self) -> list[Revocation]:
        with self._lock:
            rows = self._db.execute("SELECT token_id, at_ms, reason FROM revocations ORDER BY at_ms").fetchall()
        return [Revocation(token_id, self._open(blob, "revocations", token_id, "reason").decode(), at)
                for token_id, at, blob in rows]

    def revocations(self) -> dict[str, str]:
        """token id -> reason, the form ``TokenStates`` starts from."""
        return {r.token_id: r.reason for r in self.revocation_list()}

    def revoke_session(self, session_id: str, expires_at_ms: int, at_ms: int) -> None:
        """Refuse the session until it would have expired anyway; expired entries are dropped on the way."""
        session_id, at = _text(session_id, "session_id"), _ms(at_ms, "at_ms")
        with self._transaction() as db:
            db.execute("DELETE FROM revoked_sessions WHERE expires_at_ms <= ?", (at,))
            db.execute("INSERT OR REPLACE INTO revoked_sessions VALUES (?, ?, ?)",
                       (session_id, _ms(expires_at_ms, "expires_at_ms"), at))

    def revoked_sessions(self, now_ms: int) -> set[str]:
        """Ids of revoked sessions not yet expired (load them at start, check them in memory)."""
        with self._lock:
            rows = self._db.execute("SELECT session_id FROM revoked_sessions WHERE expires_at_ms > ?",
                                    (_ms(now_ms, "now_ms"),)).fetchall()
        return {session_id for (session_id,) in rows}
