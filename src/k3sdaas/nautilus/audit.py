"""The audit log: every request, hash-chained on disk, anchored on chain by batch Merkle roots.

Record (one JSON line, keys sorted, no spaces, UTF-8)::

    {"hash": …, "identity": "sui:0x…", "latency_us": 812, "path": "/api/v1/nodes", "prev": …,
     "request_id": "…", "seq": 41, "status": 200, "tier": 2, "time_ms": 1764582000123, "verb": "GET"}

``hash`` is the hex SHA-256 of the canonical JSON of the other fields (``prev`` included: the hash of
the record before, 64 zeros for seq 0), so a changed, removed or moved line breaks the chain.
Records ``first_seq..=last_seq`` of a batch are the leaves of an RFC 6962 Merkle tree (leaf = SHA-256
of 0x00 ‖ record hash, node = SHA-256 of 0x01 ‖ left ‖ right); the root goes on chain through
``k8s_gateway::anchor_audit_batch``, signed by the enclave key over
``bcs(IntentMessage {intent: 1, timestamp_ms, payload: AuditBatch {merkle_root, count, first_seq, last_seq}})``
(move/sources/registry.move), one transaction per batch.

``AuditLog.record`` only appends a tuple to a list: a background task writes and fsyncs the pending
records as one batch every ``flush_interval``, and another anchors written records in batches of
``batch_size`` or every ``anchor_interval`` seconds, retrying while the chain is down.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..chain import ChainClient, abi
from ..chain.dynamic_fields import uleb128
from ..errors import InvalidInput, K3sdaasError

log = logging.getLogger("k3sdaas.nautilus.audit")

GENESIS = "0" * 64
FIELDS = ("seq", "prev", "time_ms", "request_id", "identity", "tier", "verb", "path", "status", "latency_us")
INTENT_AUDIT_ANCHOR = 1  # k8s_gateway::INTENT_AUDIT_ANCHOR
MAX_BATCH = 10_000  # one anchor per batch; a proof is log2(batch) hashes
MAX_LINE_BYTES = 64 * 1024
MAX_PATH_CHARS = 2048
MAX_REQUEST_ID_CHARS = 128  # what AuditRequests keeps of a client's X-Request-Id
RECENT_REQUEST_IDS = 10_000  # client request ids whose seq the log remembers (the newest), for GET /audit/proof
PROOF_FORMAT = "k3sdaas-audit-proof/1"
Sign = Callable[[bytes], bytes]


class AuditError(K3sdaasError):
    """A log that does not match its anchors, a bad proof, or an unreadable log."""


# ----- hashing and Merkle trees (RFC 6962 §2.1, RFC 9162 §2.1.3) -----------------------------------

# canonical() of a record without its hash, as a format string: the writer's loop (``_serialize``) skips the
# generic encoder; keys are in sorted order, "hash" sorts first, so a line is {"hash":…, + this minus its "{".
BODY = ('{"identity":%s,"latency_us":%d,"path":%s,"prev":"%s","request_id":%s,"seq":%d,"status":%d,"tier":%d,'
        '"time_ms":%d,"verb":%s}')
_str = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) quotes strings with


def canonical(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical({k: record[k] for k in FIELDS})).hexdigest()


def leaf_hash(record_digest: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + record_digest).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two below ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes; an empty tree is refused (a batch has at least one record)."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def inclusion_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, leaves): the sibling hashes from the leaf up to the root."""
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_path(leaves[:k], index), merkle_root(leaves[k:])]
    return [*inclusion_path(leaves[k:], index - k), merkle_root(leaves[:k])]


def root_from_path(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """The root an inclusion path leads to (RFC 9162 §2.1.3.2), or None when the path cannot fit the tree."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(sibling, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, sibling)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def batch_message(merkle_root_: bytes, first_seq: int, last_seq: int, timestamp_ms: int) -> bytes:
    """What the enclave signs for ``anchor_audit_batch``: BCS ``IntentMessage<AuditBatch>``."""
    count = last_seq - first_seq + 1
    return (bytes([INTENT_AUDIT_ANCHOR]) + timestamp_ms.to_bytes(8, "little") + uleb128(len(merkle_root_))
            + merkle_root_ + b"".join(v.to_bytes(8, "little") for v in (count, first_seq, last_seq)))


# ----- the writer -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Anchor:
    """One ``AuditBatchAnchored`` event."""

    merkle_root: bytes
    first_seq: int
    last_seq: int
    timestamp_ms: int
    tx_digest: str


AnchorBatch = Callable[[bytes, int, int], Awaitable[str]]  # (root, first_seq, last_seq) -> tx digest
Identify = Callable[[str | None], tuple[str, int]]  # Authorization header -> (identity, tier)


def anonymous(authorization: str | None) -> tuple[str, int]:
    return "anonymous", 0


class ChainAnchor:
    """Anchors a batch with one ``anchor_audit_batch`` transaction, signed by ``sign`` (the enclave key)."""

    def __init__(self, client: Callable[[], Awaitable[ChainClient]], sign: Sign) -> None:
        self._client = client
        self._sign = sign

    async def __call__(self, root: bytes, first_seq: int, last_seq: int) -> str:
        client = await self._client()
        now = await client.chain_time_ms()  # the Move function wants it within 10 minutes of the chain's clock
        signature = self._sign(batch_message(root, first_seq, last_seq, now))
        outcome = await client.anchor_audit_batch(root, last_seq - first_seq + 1, first_seq, last_seq, now, signature)
        return outcome.digest


def _bounded(name: str, value: float, low: float, high: float) -> float:
    if isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(f"audit {name} must be between {low:g} and {high:g}, got {value!r}", field=name)
    return value


class AuditLog:
    """The append-only log at ``path``; ``<path>.anchored`` remembers the first seq not yet anchored."""

    def __init__(self, path: str | os.PathLike[str], anchor: AnchorBatch | None = None, *, batch_size: int = 1000,
                 anchor_interval: float = 10.0, flush_interval: float = 0.2, retry_delay: float = 2.0,
                 identify: Identify | None = None) -> None:
        self.path = Path(path)
        self.anchor = anchor
        self.identify = identify or anonymous
        self._boot = os.urandom(4).hex()  # request ids made here: this random prefix and the seq
        self.batch_size = int(_bounded("batch_size", batch_size, 1, MAX_BATCH))
        self.anchor_interval = _bounded("anchor_interval", anchor_interval, 0.05, 3600)
        self.flush_interval = _bounded("flush_interval", flush_interval, 0.01, 60)
        self.retry_delay = retry_delay
        self._pending: list[tuple[Any, ...]] = []
        self._unwritten: tuple[list[bytes], list[bytes]] = ([], [])  # lines and hashes serialized, not on disk yet
        self._unanchored: list[bytes] = []  # record hashes from seq self.anchored_seq on
        self._oldest_unanchored = 0.0
        self._written = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.anchored: list[tuple[int, int, str]] = []  # (first_seq, last_seq, tx digest), this run
        self._request_seqs: dict[str, int] = {}  # client request id -> seq, insertion ordered, bounded
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.next_seq, self.last_hash = self._recover()

    # ----- the hot path
    def record(self, identity: str, tier: int, verb: str, path: str, status: int, latency: float,
               request_id: str = "") -> None:
        """Queue one request's record (no I/O here; ``latency`` in seconds; an empty ``request_id`` gets one)."""
        self._pending.append((int(time.time() * 1000), request_id, identity, tier, verb, path[:MAX_PATH_CHARS],
                              status, int(latency * 1e6)))

    def record_credential(self, authorization: str, verb: str, path: str, status: int, latency: float,
                          request_id: str = "") -> None:
        """``record`` for the caller behind an ``Authorization`` header, resolved by ``identify`` when the batch
        is written: once per distinct credential per batch, not once per request. The header never reaches disk."""
        self._pending.append((int(time.time() * 1000), request_id, authorization, None, verb, path[:MAX_PATH_CHARS],
                              status, int(latency * 1e6)))

    # ----- life
    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._write_forever(), name="audit-writer")]
        if self.anchor is not None:
            self._tasks.append(asyncio.create_task(self._anchor_forever(), name="audit-anchor"))

    async def stop(self) -> None:
        """Write what is pending and try once to anchor the rest; unanchored records are anchored at next start."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush()
        if self.anchor is not None:
            while self._unanchored:
                if not await self._anchor_once():
                    break

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            # Serializing and hashing here, in the loop, costs less than handing the GIL to a thread and back;
            # only the write and fsync, which release the GIL, run in a thread.
            lines, hashes = self._serialize(pending)
            self._unwritten[0].extend(lines)
            self._unwritten[1].extend(hashes)
        if self._unwritten[0]:
            await asyncio.to_thread(self._append, self._unwritten[0])  # kept for the next flush if this fails
            if not self._unanchored:
                self._oldest_unanchored = time.monotonic()
            self._unanchored += self._unwritten[1]
            self._unwritten = ([], [])
            self._written.set()

    async def _write_forever(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except OSError as exc:  # a full disk must not take the service down; the records stay queued
                log.error("audit log %s cannot be written: %s", self.path, exc)

    def _serialize(self, pending: list[tuple[Any, ...]]) -> tuple[list[bytes], list[bytes]]:
        """The lines and record hashes of ``pending``; advances next_seq and last_hash."""
        lines, hashes = [], []
        seq, prev = self.next_seq, self.last_hash
        resolved: dict[str, tuple[str, int]] = {}
        for time_ms, given_id, who, given_tier, verb, path, status, latency_us in pending:
            if given_tier is None:  # a credential from record_credential
                if who not in resolved:
                    resolved[who] = self.identify(who or None)
                identity, tier = resolved[who]
            else:
                identity, tier = who, given_tier
            if given_id:
                self._remember_request(given_id, seq)
            request_id = given_id or f"{self._boot}-{seq}"
            body = BODY % (_str(identity), latency_us, _str(path), prev, _str(request_id), seq, status, tier, time_ms,
                           _str(verb))
            digest = hashlib.sha256(body.encode()).digest()
            prev = digest.hex()
            lines.append(f'{{"hash":"{prev}",{body[1:]}\n'.encode())
            hashes.append(digest)
            seq += 1
        self.next_seq, self.last_hash = seq, prev
        return lines, hashes

    def _remember_request(self, request_id: str, seq: int) -> None:
        self._request_seqs.pop(request_id, None)  # a reused id names its newest record
        self._request_seqs[request_id] = seq
        if len(self._request_seqs) > RECENT_REQUEST_IDS:
            del self._request_seqs[next(iter(self._request_seqs))]

    def seq_of(self, request_id: str) -> int | None:
        """The seq of the newest record with this client request id, among the last RECENT_REQUEST_IDS."""
        return self._request_seqs.get(request_id)

    def _append(self, lines: list[bytes]) -> None:
        with open(self.path, "ab") as out:
            out.write(b"".join(lines))
            out.flush()
            os.fsync(out.fileno())

    # ----- anchoring
    @property
    def anchored_seq(self) -> int:
        """The first seq not anchored yet (records serialized but not written are not anchored either)."""
        return self.next_seq - len(self._unwritten[1]) - len(self._unanchored)

    async def _anchor_forever(self) -> None:
        while True:
            await self._written.wait()
            wait = self._oldest_unanchored + self.anchor_interval - time.monotonic()
            if len(self._unanchored) < self.batch_size and wait > 0:
                await asyncio.sleep(min(wait, self.flush_interval))
                continue
            if not await self._anchor_once():
                await asyncio.sleep(self.retry_delay)
            if not self._unanchored:
                self._written.clear()

    async def _anchor_once(self) -> bool:
        """Anchor the oldest unanchored records (up to a batch); False when the chain refused or is down."""
        assert self.anchor is not None
        batch = self._unanchored[:self.batch_size]
        first = self.anchored_seq
        last = first + len(batch) - 1
        try:
            digest = await self.anchor(merkle_root([leaf_hash(h) for h in batch]), first, last)
        except K3sdaasError as exc:
            log.warning("audit batch %d..%d not anchored yet: %s", first, last, exc)
            return False
        del self._unanchored[:len(batch)]
        self._oldest_unanchored = time.monotonic()
        self.anchored.append((first, last, digest))
        staged = self._state_path().with_name(self._state_path().name + ".tmp")
        staged.write_text(json.dumps({"next_seq": last + 1}))
        os.replace(staged, self._state_path())  # atomic: a crash leaves the old or the new state, never half
        log.info("anchored audit batch %d..%d in %s", first, last, digest)
        return True

    def _state_path(self) -> Path:
        return self.path.with_name(self.path.name + ".anchored")

    def _recover(self) -> tuple[int, str]:
        """The next seq and last hash from the log on disk; a torn last line (a crash mid-write) is cut off,
        and records not anchored yet are queued for anchoring again."""
        try:
            anchored = int(json.loads(self._state_path().read_text())["next_seq"])
        except FileNotFoundError:
            anchored = 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AuditError(f"audit state {str(self._state_path())!r} is unreadable: {exc}") from None
        seq, last = 0, GENESIS
        if self.path.exists():
            size = self.path.stat().st_size
            good = 0
            for _, raw, record in _lines(self.path):
                if not raw.endswith(b"\n") or record is None:
                    break
                good += len(raw)
                seq, last = int(record["seq"]) + 1, str(record["hash"])
                if int(record["seq"]) >= anchored:
                    self._unanchored.append(bytes.fromhex(last))
            if good < size:
                log.warning("audit log %s: cut a torn last line (%d bytes)", self.path, size - good)
                os.truncate(self.path, good)
        self._oldest_unanchored = time.monotonic()
        if self._unanchored:
            self._written.set()
        return seq, last


def _lines(path: Path) -> Iterator[tuple[int, bytes, dict[str, Any] | None]]:
    """(line number from 1, raw bytes, the record or None when the line is not one)."""
    with open(path, "rb") as source:
        # A line is read up to MAX_LINE_BYTES + 1 bytes: a longer one is not a record (and yields in pieces).
        for number, raw in enumerate(iter(lambda: source.readline(MAX_LINE_BYTES + 1), b""), 1):
            record: dict[str, Any] | None = None
            if len(raw) <= MAX_LINE_BYTES:
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = None
                if isinstance(parsed, dict) and set(parsed) == {*FIELDS, "hash"} and _typed(parsed):
                    record = parsed
            yield number, raw, record


def _typed(record: dict[str, Any]) -> bool:
    ints = ("seq", "time_ms", "tier", "status", "latency_us")
    return all(isinstance(record[k], int) and not isinstance(record[k], bool) for k in ints) and all(
        isinstance(record[k], str) for k in (*FIELDS, "hash") if k not in ints)


# ----- middleware -----------------------------------------------------------------------------------

class AuditRequests:
    """Pure ASGI middleware: one record per HTTP request, and the log's life tied to the app's lifespan."""

    def __init__(self, app: Any, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def observed(message: dict[str, Any]) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
            elif kind == "websocket.accept":  # an upgrade (exec, attach) is recorded as its 101, when it ends
                status = 101
            elif kind == "websocket.close" and status == 500:
                status = 403  # refused before the handshake: the server answers 403
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            authorization = request_id = b""
            for name, value in scope["headers"]:
                if name == b"authorization":
                    authorization = value
                elif name == b"x-request-id":
                    request_id = value[:MAX_REQUEST_ID_CHARS]
            self.audit.record_credential(authorization.decode("latin-1"), scope.get("method", "GET"), scope["path"],
                                         status, time.perf_counter() - started, request_id.decode("latin-1"))

    async def _lifespan(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def lifespan_receive() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            if message["type"] == "lifespan.startup":
                await self.audit.start()
            elif message["type"] == "lifespan.shutdown":
                await self.audit.stop()
            return message

        await self.app(scope, lifespan_receive, send)


def master_identify(authenticate: Callable[[str | None], tuple[Any, int]]) -> Identify:
    """``sui:<address>`` and the tier for a valid session, else ``anonymous`` (tier 0)."""

    def identify(authorization: str | None) -> tuple[str, int]:
        if not authorization:
            return "anonymous", 0
        try:
            session, tier = authenticate(authorization)
        except K3sdaasError:
            return "invalid-session", 0
        return f"sui:{session.address}", tier

    return identify


def install(app: Any, master: Any) -> AuditLog:
    """Audit every request of the master's app; batches anchored through the master's chain client.

    ``K3SDAAS_NAUTILUS_AUDIT_BATCH`` (records, default 1000) and ``K3SDAAS_NAUTILUS_AUDIT_INTERVAL``
    (seconds, default 10) set the batching; the log is ``<state_dir>/audit.log``.
    """
    try:
        batch = int(os.environ.get("K3SDAAS_NAUTILUS_AUDIT_BATCH", "1000"))
        interval = float(os.environ.get("K3SDAAS_NAUTILUS_AUDIT_INTERVAL", "10"))
    except ValueError:
        raise InvalidInput("K3SDAAS_NAUTILUS_AUDIT_BATCH and _INTERVAL must be numbers", field="audit") from None
    # The enclave key: the session issuer holds the only reference the Master keeps.
    sign = master.sessions._key.private_key.sign
    audit = AuditLog(Path(master.config.state_dir) / "audit.log", ChainAnchor(master.chain.client, sign),
                     batch_size=batch, anchor_interval=interval, identify=master_identify(master.authenticate))
    app.add_middleware(AuditRequests, audit=audit)
    from .audit_proof import route  # the endpoint reads this module's proofs (imported late: it imports them)

    app.router.routes.insert(0, route(master, audit))  # before the proxy's catch-alls
    return audit


# ----- verification and proofs ----------------------------------------------------------------------

async def read_anchors(client: ChainClient) -> list[Anchor]:
    """Every ``AuditBatchAnchored`` event of the deployment, oldest first."""
    anchors = []
    async for event in client.events(["AuditBatchAnchored"], module=abi.GATEWAY):
        fields = event.fields
        anchors.append(Anchor(base64.b64decode(fields["merkle_root"]), int(fields["first_seq"]),
                              int(fields["last_seq"]), int(fields["timestamp_ms"]), event.tx_digest))
    return anchors


def _line_of(path: Path, seq: int) -> int | None:
    return next((n for n, _, r in _lines(path) if r is not None and r["seq"] == seq), None)


def _chain(path: Path) -> list[bytes]:
    """The record hashes of a well-linked log (index = seq); AuditError names the first broken line."""
    hashes: list[bytes] = []
    prev = GENESIS
    for number, _raw, record in _lines(path):
        where = f"line {number}"
        if record is None:
            raise AuditError(f"{where}: not an audit record (malformed or truncated)")
        seq = record["seq"]
        if seq != len(hashes):
            later = _line_of(path, len(hashes)) if seq > len(hashes) else None
            if later is None:
                raise AuditError(f"{where}: record seq {len(hashes)} is missing (this line holds seq {seq})")
            raise AuditError(f"{where}: out of order: holds seq {seq}, seq {len(hashes)} is at line {later}")
        if record_hash(record) != record["hash"]:
            raise AuditError(f"{where} (seq {seq}): tampered: its content does not match its hash")
        if record["prev"] != prev:
            raise AuditError(f"line {number - 1} (seq {seq - 1}): tampered: its hash is not the one line {number} "
                             "links to")
        prev = record["hash"]
        hashes.append(bytes.fromhex(prev))
    return hashes


def verify_log(path: str | os.PathLike[str], anchors: Sequence[Anchor]) -> str:
    """Check the log's chain, then every anchored batch against its root; the summary, or AuditError."""
    source = Path(path)
    if not source.is_file():
        raise AuditError(f"audit log {str(path)!r} is not a readable file")
    hashes = _chain(source)
    ranges: dict[tuple[int, int], list[Anchor]] = {}
    for anchor in anchors:  # a batch anchored twice (a retry after an unanswered transaction) is one range
        ranges.setdefault((anchor.first_seq, anchor.last_seq), []).append(anchor)
    covered = 0
    for (first, last), same in sorted(ranges.items()):
        if first > covered:
            raise AuditError(f"line {covered + 1}: records seq {covered}..{first - 1} have no anchor on chain")
        if last >= len(hashes):
            raise AuditError(f"line {len(hashes) + 1}: record seq {len(hashes)} is missing: it is anchored in tx "
                             f"{same[0].tx_digest} (seq {first}..{last}) but the log ends at line {len(hashes)}")
        root = merkle_root([leaf_hash(h) for h in hashes[first:last + 1]])
        if all(a.merkle_root != root for a in same):
            raise AuditError(f"line {first + 1}: tampered: lines {first + 1}-{last + 1} (seq {first}..{last}) do not "
                             f"match the Merkle root anchored in tx {same[0].tx_digest}")
        covered = max(covered, last + 1)
    pending = len(hashes) - covered
    return (f"ok: {len(hashes)} records, {covered} anchored in {len(ranges)} batches"
            + (f", {pending} not anchored yet (seq {covered}..)" if pending else ""))


def prove(path: str | os.PathLike[str], seq: int, anchors: Sequence[Anchor]) -> dict[str, Any]:
    """An inclusion proof of record ``seq`` in its anchored batch (checked before it is returned)."""
    hashes = _chain(Path(path))
    anchor = next((a for a in anchors if a.first_seq <= seq <= a.last_seq and a.last_seq < len(hashes)
                   and a.merkle_root == merkle_root([leaf_hash(h) for h in hashes[a.first_seq:a.last_seq + 1]])), None)
    if anchor is None:
        raise AuditError(f"record seq {seq} is not in any batch anchored on chain that matches this log")
    leaves = [leaf_hash(h) for h in hashes[anchor.first_seq:anchor.last_seq + 1]]
    record = next(r for _, _, r in _lines(Path(path)) if r is not None and r["seq"] == seq)
    return {"format": PROOF_FORMAT, "record": record, "leaf_index": seq - anchor.first_seq, "tree_size": len(leaves),
            "first_seq": anchor.first_seq, "last_seq": anchor.last_seq, "merkle_root": anchor.merkle_root.hex(),
            "audit_path": [h.hex() for h in inclusion_path(leaves, seq - anchor.first_seq)],
            "tx_digest": anchor.tx_digest}


def check_proof(proof: Any, anchors: Sequence[Anchor]) -> str:
    """Check a proof from ``prove`` on its own and against the anchors read from chain."""
    try:
        record, index, size = proof["record"], proof["leaf_index"], proof["tree_size"]
        first, last, root = proof["first_seq"], proof["last_seq"], bytes.fromhex(proof["merkle_root"])
        path = [bytes.fromhex(h) for h in proof["audit_path"]]
        if proof["format"] != PROOF_FORMAT or not all(type(v) is int for v in (index, size, first, last)) or \
                len(path) > 64 or set(record) != {*FIELDS, "hash"} or not _typed(record):
            raise TypeError
        digest = bytes.fromhex(record["hash"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise AuditError(f"not a {PROOF_FORMAT} inclusion proof (see `audit prove`)") from None
    if record_hash(record) != record["hash"]:
        raise AuditError(f"proof refused: record seq {record['seq']} does not match its hash")
    if record["seq"] != first + index or size != last - first + 1:
        raise AuditError("proof refused: leaf_index and tree_size do not fit the batch's seq range")
    if root_from_path(index, size, leaf_hash(digest), path) != root:
        raise AuditError(f"proof refused: the audit path of seq {record['seq']} does not lead to merkle_root")
    anchor = next((a for a in anchors if (a.merkle_root, a.first_seq, a.last_seq) == (root, first, last)), None)
    if anchor is None:
        raise AuditError(f"proof refused: no batch seq {first}..{last} with this root is anchored on chain")
    return f"ok: record seq {record['seq']} is in batch {first}..{last} anchored in tx {anchor.tx_digest}"
