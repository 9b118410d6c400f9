"""The encrypted state store and its key providers (file, and KMS against moto's server)."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import os
import sqlite3
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from k3sdaas.errors import InvalidInput, Unavailable
from k3sdaas.nautilus.keys import ENCRYPTION_CONTEXT, FileKeyProvider, KmsKeyProvider, StateKeyError
from k3sdaas.nautilus.store import Node, StateStore, StoreError, StoreFull

_spec = importlib.util.spec_from_file_location("aws_conftest", Path(__file__).parents[1] / "aws" / "conftest.py")
assert _spec and _spec.loader
_aws = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_aws)
endpoint = _aws.endpoint  # the project's moto server fixture (module scoped)

NOW = 1_764_579_600_000
REGION = "us-east-1"


def _node(n: int = 1, **changes: Any) -> Node:
    fields: dict[str, Any] = {
        "node_id": f"worker-{n}", "token_id": "0x" + f"{n:064x}", "address": "0x" + f"{n + 1000:064x}", "tier": 2,
        "ip": f"10.1.{n // 250}.{n % 250}", "capacity": {"cpu": 4, "memory_mib": 8192}, "registered_at_ms": NOW,
        "last_seen_ms": NOW, "metrics": {}}
    return Node(**{**fields, **changes})


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "state.key"


@pytest.fixture
def store(tmp_path: Path, key_file: Path) -> Any:
    with StateStore(tmp_path / "state.db", FileKeyProvider(key_file)) as opened:
        yield opened


def test_restart_loses_nothing(tmp_path: Path, key_file: Path) -> None:
    db = tmp_path / "state.db"
    with StateStore(db, FileKeyProvider(key_file)) as first:
        first.register_node(_node(1))
        first.register_node(_node(2, ip="192.0.2.7"))
        assert first.heartbeat("worker-1", NOW + 10_000, {"cpu_pct": 12.5, "pods": 3})
        first.add_nonce("nonce-kept-over-restart", NOW, 60_000)
        first.add_nonce("nonce-used-before", NOW, 60_000)
        assert first.consume_nonce("nonce-used-before", NOW + 1)
        first.revoke_token("0x" + "ab" * 32, "the seal token was slashed below tier 1", NOW + 5)
        first.revoke_session("jti-1", NOW + 900_000, NOW + 6)
    with StateStore(db, FileKeyProvider(key_file)) as second:
        assert second.nodes() == [_node(1, last_seen_ms=NOW + 10_000, metrics={"cpu_pct": 12.5, "pods": 3}),
                                  _node(2, ip="192.0.2.7")]
        assert second.consume_nonce("nonce-kept-over-restart", NOW + 2)
        assert not second.consume_nonce("nonce-used-before", NOW + 2)
        assert second.revocations() == {"0x" + "ab" * 32: "the seal token was slashed below tier 1"}
        assert second.revoked_sessions(NOW + 7) == {"jti-1"}
        assert second.revoked_sessions(NOW + 900_000) == set()


def test_secrets_are_not_in_the_file_and_the_files_are_private(tmp_path: Path, store: StateStore) -> None:
    store.register_node(_node(7, ip="203.0.113.99", capacity={"gpu": "nvidia-a100-unique"}))
    store.heartbeat("worker-7", NOW + 1, {"marker": "metrics-marker-xyz"})
    store.add_nonce("nonce-in-clear-would-show", NOW, 60_000)
    store.revoke_token("0x" + "cd" * 32, "reason-marker-abc", NOW)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in tmp_path.glob("state*")}
    assert modes == dict.fromkeys(("state.db", "state.db-wal", "state.db-shm", "state.key"), "0o600")
    store.close()  # checkpoints the WAL into state.db
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    assert b"worker-7" in raw  # the file really holds the rows: node ids are kept in the clear
    for secret in (b"203.0.113.99", b"nvidia-a100-unique", b"metrics-marker-xyz", b"nonce-in-clear-would-show",
                   b"reason-marker-abc", ("0x" + f"{7:064x}").encode()):
        assert secret not in raw


def test_a_wrong_key_fails_at_open_with_a_clear_error(tmp_path: Path, key_file: Path) -> None:
    db = tmp_path / "state.db"
    with StateStore(db, FileKeyProvider(key_file)) as first:
        first.register_node(_node())
    with pytest.raises(StateKeyError, match=r"does not open state database .*state\.db"):
        StateStore(db, FileKeyProvider(tmp_path / "other.key"))
    with StateStore(db, FileKeyProvider(key_file)) as again:  # and the right key still works
        assert again.node("worker-1") == _node()


def test_unusable_databases_are_refused_naming_the_path(tmp_path: Path, key_file: Path) -> None:
    not_sqlite = tmp_path / "garbage.db"
    not_sqlite.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"garbage\.db' cannot be opened: file is not a database"):
        StateStore(not_sqlite, FileKeyProvider(key_file))
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match=r"dir\.db' cannot be opened"):
        StateStore(tmp_path / "dir.db", FileKeyProvider(key_file))
    StateStore(tmp_path / "future.db", FileKeyProvider(key_file)).close()
    with sqlite3.connect(tmp_path / "future.db") as raw:
        raw.execute("UPDATE meta SET value = 2 WHERE name = 'schema_version'")
    with pytest.raises(StoreError, match="has schema version 2; this master reads version 1"):
        StateStore(tmp_path / "future.db", FileKeyProvider(key_file))


def test_tampered_or_moved_rows_fail_authentication(tmp_path: Path, store: StateStore) -> None:
    store.register_node(_node(1))
    store.register_node(_node(2))
    with sqlite3.connect(tmp_path / "state.db") as raw:
        # Copy node 2's identity blob onto node 1: valid ciphertext, wrong row.
        raw.execute("UPDATE nodes SET identity = (SELECT identity FROM nodes WHERE node_id = 'worker-2') "
                    "WHERE node_id = 'worker-1'")
    with pytest.raises(StoreError, match="nodes row 'worker-1' identity fails authentication"):
        store.node("worker-1")
    with sqlite3.connect(tmp_path / "state.db") as raw:
        blob = bytearray(raw.execute("SELECT metrics FROM nodes WHERE node_id = 'worker-2'").fetchone()[0])
        blob[-1] ^= 1
        raw.execute("UPDATE nodes SET metrics = ? WHERE node_id = 'worker-2'", (bytes(blob),))
    with pytest.raises(StoreError, match="worker-2' metrics fails authentication"):
        store.node("worker-2")


def test_nonces_are_single_use_under_concurrency(store: StateStore) -> None:
    store.add_nonce("contested", NOW, 60_000)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def take() -> None:
        barrier.wait()
        results.append(store.consume_nonce("contested", NOW + 1))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_a_nonce_cannot_be_planted_without_the_key(tmp_path: Path, store: StateStore) -> None:
    with sqlite3.connect(tmp_path / "state.db") as raw:
        for mac in (hashlib.sha256(b"planted").digest(), hmac.digest(os.urandom(32), b"planted", "sha256")):
            raw.execute("INSERT INTO nonces VALUES (?, ?)", (mac, NOW + 60_000))
    assert not store.consume_nonce("planted", NOW)


def test_nonces_expire_and_are_bounded(tmp_path: Path, key_file: Path) -> None:
    with StateStore(tmp_path / "s.db", FileKeyProvider(key_file), max_nonces=3) as store:
        store.add_nonce("short-lived", NOW, 1_000)
        assert not store.consume_nonce("short-lived", NOW + 1_000)  # expires at exactly NOW + ttl
        assert not store.consume_nonce("never-issued", NOW)
        for n in range(3):  # "short-lived" has expired by now and is dropped, so three fit
            store.add_nonce(f"n{n}", NOW + 1_000, 60_000)
        with pytest.raises(StoreFull, match="3 challenges are outstanding"):
            store.add_nonce("one-too-many", NOW + 1_000, 60_000)
        assert not store.consume_nonce("one-too-many", NOW + 1_001)
        store.add_nonce("after-expiry", NOW + 61_000, 60_000)  # the three expired and were dropped
        assert store.consume_nonce("after-expiry", NOW + 61_001)


def test_heartbeats_update_known_nodes_only(store: StateStore) -> None:
    store.register_node(_node(1))
    assert not store.heartbeat("worker-unknown", NOW, {})
    assert store.heartbeat("worker-1", NOW + 10_000, {"pods": 1})
    node = store.node("worker-1")
    assert node is not None and (node.last_seen_ms, node.metrics, node.registered_at_ms) == (NOW + 10_000,
                                                                                               {"pods": 1}, NOW)
    assert store.remove_node("worker-1") and store.node("worker-1") is None and not store.remove_node("worker-1")


def test_revocations_and_unrevocation(store: StateStore) -> None:
    token = "0x" + "ef" * 32
    store.revoke_token(token, "the seal token was unstaked", NOW)
    assert [(r.token_id, r.reason, r.at_ms) for r in store.revocation_list()] == [(token, "the seal token was unstaked",
                                                                                    NOW)]
    assert store.unrevoke_token(token) and store.revocations() == {} and not store.unrevoke_token(token)


@pytest.mark.parametrize(("call", "field"), [
    (lambda s: s.register_node(_node(node_id="")), "node_id"),
    (lambda s: s.register_node(_node(tier="2")), "tier"),
    (lambda s: s.register_node(_node(capacity={"blob": "x" * 9000})), "capacity"),
    (lambda s: s.register_node(_node(capacity={"nan": float("nan")})), "capacity"),
    (lambda s: s.register_node(_node(registered_at_ms=-1)), "registered_at_ms"),
    (lambda s: s.heartbeat("worker-1", 1.5, {}), "now_ms"),
    (lambda s: s.heartbeat("worker-1", NOW, ["not", "an", "object"]), "metrics"),
    (lambda s: s.add_nonce("x" * 257, NOW, 1), "nonce"),
    (lambda s: s.consume_nonce(None, NOW), "nonce"),
    (lambda s: s.revoke_token("0x1", "r" * 1025, NOW), "reason"),
])
def test_bad_input_is_refused_and_changes_nothing(store: StateStore, call: Any, field: str) -> None:
    store.register_node(_node(1))
    before = store.nodes()
    with pytest.raises(InvalidInput) as refused:
        call(store)
    assert refused.value.field == field
    assert store.nodes() == before and store.revocations() == {}


def test_a_thousand_nodes_heartbeating(store: StateStore) -> None:
    """The load of 1,000 workers every 10 s is 100 heartbeats/s; one UPDATE each must stay well under 20 ms."""
    for n in range(1000):
        store.register_node(_node(n))
    times = []
    for n in range(2000):
        started = time.perf_counter()
        assert store.heartbeat(f"worker-{n % 1000}", NOW + n, {"cpu_pct": n % 100, "pods": n % 30})
        times.append(time.perf_counter() - started)
    p99 = statistics.quantiles(times, n=100)[98]
    print(f"heartbeat: median {statistics.median(times) * 1e6:.0f} us, p99 {p99 * 1e6:.0f} us over 2000")
    assert p99 < 0.020
    started = time.perf_counter()
    assert len(store.nodes()) == 1000
    print(f"listing 1000 nodes: {(time.perf_counter() - started) * 1e3:.1f} ms")


def test_concurrent_threads_share_the_store(store: StateStore) -> None:
    for n in range(20):
        store.register_node(_node(n))
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(100):
                store.heartbeat(f"worker-{(worker * 7 + i) % 20}", NOW + i, {"i": i})
                store.add_nonce(f"nonce-{worker}-{i}", NOW, 60_000)
                assert store.consume_nonce(f"nonce-{worker}-{i}", NOW + 1)
                if i % 25 == 0:
                    store.nodes()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.nodes()) == 20


# -- FileKeyProvider ----------------------------------------------------------------------------------


def test_key_file_is_created_0600_with_32_bytes_and_reused(key_file: Path, tmp_path: Path) -> None:
    first = FileKeyProvider(key_file).data_key(tmp_path / "db")
    assert oct(key_file.stat().st_mode & 0o777) == "0o600" and key_file.read_bytes() == first and len(first) == 32
    assert FileKeyProvider(key_file).data_key(tmp_path / "db") == first
    assert FileKeyProvider(tmp_path / "other").data_key(tmp_path / "db") != first


@pytest.mark.parametrize(("prepare", "message"), [
    (lambda p: (p.write_bytes(os.urandom(32)), p.chmod(0o644)), "accessible by group or others .*mode 0o644"),
    (lambda p: (p.write_bytes(os.urandom(31)), p.chmod(0o600)), "holds 31 bytes, not the 32"),
    (lambda p: (p.write_bytes(os.urandom(33)), p.chmod(0o600)), "holds 33 bytes, not the 32"),
    (lambda p: p.mkdir(), "is not a regular file"),
])
def test_bad_key_files_are_refused_naming_the_path(key_file: Path, tmp_path: Path, prepare: Any, message: str) -> None:
    prepare(key_file)
    with pytest.raises(StateKeyError, match=message) as refused:
        StateStore(tmp_path / "state.db", FileKeyProvider(key_file))
    assert str(key_file) in str(refused.value)
    assert not (tmp_path / "state.db").exists()


# -- KmsKeyProvider (moto server) ---------------------------------------------------------------------


@pytest.fixture
def kms(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_SESSION_TOKEN", "testing")):
        monkeypatch.setenv(name, value)
    return boto3.client("kms", endpoint_url=endpoint, region_name=REGION)


def test_kms_envelope_survives_restart(kms: Any, endpoint: str, tmp_path: Path) -> None:
    key_id = kms.create_key(Description="k3sdaas state")["KeyMetadata"]["KeyId"]
    db = tmp_path / "state.db"
    with StateStore(db, KmsKeyProvider(key_id, REGION, endpoint)) as first:
        first.register_node(_node(3))
    wrapped = KmsKeyProvider.wrapped_key_path(db)
    assert wrapped.name == "state.db.kms-key" and oct(wrapped.stat().st_mode & 0o777) == "0o600"
    # The file holds KMS's ciphertext of the data key, opened only with the store's encryption context.
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=wrapped.read_bytes())
    data_key = kms.decrypt(CiphertextBlob=wrapped.read_bytes(), EncryptionContext=ENCRYPTION_CONTEXT)["Plaintext"]
    unwrapped = tmp_path / "unwrapped.key"
    unwrapped.write_bytes(data_key)
    unwrapped.chmod(0o600)
    with StateStore(db, FileKeyProvider(unwrapped)) as same_key:
        assert same_key.node("worker-3") == _node(3)
    with StateStore(db, KmsKeyProvider(key_id, REGION, endpoint)) as second:
        assert second.node("worker-3") == _node(3)
    with pytest.raises(StateKeyError, match="does not open"):  # a file key is not the KMS data key
        StateStore(db, FileKeyProvider(tmp_path / "file.key"))


def test_kms_refusals_are_clear(kms: Any, endpoint: str, tmp_path: Path) -> None:
    key_id, other_id = (kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
    db = tmp_path / "state.db"
    StateStore(db, KmsKeyProvider(key_id, REGION, endpoint)).close()
    with pytest.raises(StateKeyError, match=f"KMS Decrypt with key '{other_id}' was refused: AccessDenied"):
        StateStore(db, KmsKeyProvider(other_id, REGION, endpoint))
    with pytest.raises(StateKeyError, match="KMS GenerateDataKey with key 'alias/absent' was refused: NotFound"):
        StateStore(tmp_path / "other.db", KmsKeyProvider("alias/absent", REGION, endpoint))
    assert not KmsKeyProvider.wrapped_key_path(tmp_path / "other.db").exists()
    wrapped = KmsKeyProvider.wrapped_key_path(db)
    wrapped.write_bytes(wrapped.read_bytes()[:-4] + b"\x00\x00\x00\x00")
    with pytest.raises(StateKeyError, match="was refused: InvalidCiphertextException"):
        StateStore(db, KmsKeyProvider(key_id, REGION, endpoint))


def test_kms_unreachable_is_retryable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    port = _aws._free_port()  # nothing listens there
    with pytest.raises(Unavailable, match="KMS GenerateDataKey with key 'k' failed") as refused:
        StateStore(tmp_path / "state.db", KmsKeyProvider("k", REGION, f"http://127.0.0.1:{port}"))
    assert refused.value.retryable


@pytest.mark.parametrize(("args", "field"), [(("", REGION), "key_id"), (("k", ""), "region")])
def test_kms_arguments_are_bounded(args: tuple[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        KmsKeyProvider(*args)
    assert refused.value.field == field
