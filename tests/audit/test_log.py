"""The audit log end to end: records anchored on a private Sui node, then `k3sdaas-nautilus audit` against it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from helpers.sui import EXECUTE
from k3sdaas.chain import ChainClient
from k3sdaas.errors import InvalidInput
from k3sdaas.nautilus.audit import AuditLog, ChainAnchor, canonical, read_anchors, record_hash

from .conftest import Anchored

COUNT, BATCH = 25, 10


@pytest.fixture
def log(anchored: Anchored, tmp_path: Path) -> Path:
    path = tmp_path / "audit.log"
    anchored.write(path, COUNT, BATCH)
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def rewrite(path: Path, records: list[dict], *, rehash_from: int | None = None) -> None:
    """Write records back; with ``rehash_from`` recompute hashes and links from that index, as a forger would."""
    if rehash_from is not None:
        for i in range(rehash_from, len(records)):
            if i:
                records[i]["prev"] = records[i - 1]["hash"]
            records[i]["hash"] = record_hash(records[i])
    path.write_text("".join(canonical(r).decode() + "\n" for r in records))


def verify(anchored: Anchored, path: Path) -> tuple[int, str]:
    done = anchored.cli("verify", str(path))
    return done.returncode, (done.stdout if done.returncode == 0 else done.stderr).strip()


def test_one_anchor_transaction_per_batch_and_verify_passes(anchored: Anchored, tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    before = len(anchored.node.service_log())
    audit = anchored.write(path, COUNT, BATCH)
    executed = [p for p, _ in anchored.node.service_log()[before:] if p.rsplit("/", 1)[-1] == EXECUTE]
    assert [(first, last) for first, last, _ in audit.anchored] == [(0, 9), (10, 19), (20, 24)]
    assert len(executed) == 3, "one transaction per batch, never per request"

    records = lines(path)
    assert [r["seq"] for r in records] == list(range(COUNT))
    assert records[0]["prev"] == "0" * 64 and all(records[i]["prev"] == records[i - 1]["hash"] for i in range(1, COUNT))
    assert records[3] | {"time_ms": 0, "hash": "", "prev": ""} == {
        "seq": 3, "prev": "", "time_ms": 0, "request_id": "req-3", "identity": f"sui:0x{3:064x}", "tier": 2,
        "verb": "GET", "path": "/api/v1/namespaces/ns-3/pods", "status": 200, "latency_us": 3000, "hash": ""}

    code, message = verify(anchored, path)
    assert (code, message) == (0, "ok: 25 records, 25 anchored in 3 batches")


def test_verify_names_a_tampered_line(anchored: Anchored, log: Path) -> None:
    records = lines(log)
    records[12]["status"] = 500
    rewrite(log, records)
    code, message = verify(anchored, log)
    assert code == 1 and message == "k3sdaas-nautilus: line 13 (seq 12): tampered: its content does not match its hash"


def test_verify_finds_a_rewritten_chain_through_the_anchored_root(anchored: Anchored, log: Path) -> None:
    records = lines(log)
    records[12]["identity"] = "sui:0x" + "e" * 64
    rewrite(log, records, rehash_from=12)  # the file's own chain is consistent again
    code, message = verify(anchored, log)
    assert code == 1
    assert message.startswith("k3sdaas-nautilus: line 11: tampered: lines 11-20 (seq 10..19) do not match the "
                              "Merkle root anchored in tx ")


def test_verify_names_a_deleted_line(anchored: Anchored, log: Path) -> None:
    records = lines(log)
    del records[6]
    rewrite(log, records)
    assert verify(anchored, log) == (1, "k3sdaas-nautilus: line 7: record seq 6 is missing (this line holds seq 7)")


def test_verify_names_a_reordered_line(anchored: Anchored, log: Path) -> None:
    records = lines(log)
    records[3], records[4] = records[4], records[3]
    rewrite(log, records)
    assert verify(anchored, log) == (1, "k3sdaas-nautilus: line 4: out of order: holds seq 4, seq 3 is at line 5")


def test_verify_finds_anchored_lines_cut_from_the_end(anchored: Anchored, log: Path) -> None:
    rewrite(log, lines(log)[:22])
    code, message = verify(anchored, log)
    assert code == 1
    assert message.startswith("k3sdaas-nautilus: line 23: record seq 22 is missing: it is anchored in tx ")


def test_prove_and_check_proof_round_trip_and_forgeries_fail(anchored: Anchored, log: Path, tmp_path: Path) -> None:
    done = anchored.cli("prove", "13", "--log", str(log))
    assert done.returncode == 0, done.stderr
    proof = json.loads(done.stdout)
    assert (proof["first_seq"], proof["last_seq"], proof["leaf_index"], proof["tree_size"]) == (10, 19, 3, 10)
    assert proof["record"] == lines(log)[13] and len(proof["audit_path"]) == 4
    good = tmp_path / "proof.json"
    good.write_text(json.dumps(proof))
    checked = anchored.cli("check-proof", str(good))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"ok: record seq 13 is in batch 10..19 anchored in tx {proof['tx_digest']}"

    forged_record = json.loads(json.dumps(proof))
    forged_record["record"]["status"] = 201
    forged_record["record"]["hash"] = record_hash(forged_record["record"])
    forged_path = json.loads(json.dumps(proof))
    forged_path["audit_path"][0] = "00" * 32
    other_root = json.loads(json.dumps(proof))
    other_root["merkle_root"] = "11" * 32
    other_root["audit_path"] = []
    other_root["leaf_index"], other_root["tree_size"], other_root["first_seq"], other_root["last_seq"] = 0, 1, 13, 13
    expected = {
        "record": "does not lead to merkle_root",
        "path": "does not lead to merkle_root",
        "root": "proof refused:",
    }
    for name, forged in (("record", forged_record), ("path", forged_path), ("root", other_root)):
        target = tmp_path / f"forged-{name}.json"
        target.write_text(json.dumps(forged))
        refused = anchored.cli("check-proof", str(target))
        assert refused.returncode == 1 and expected[name] in refused.stderr, (name, refused.stderr)
        assert refused.stderr.count("\n") == 1
    assert anchored.cli("prove", "25", "--log", str(log)).stderr.strip() == (
        "k3sdaas-nautilus: record seq 25 is not in any batch anchored on chain that matches this log")


def test_a_restart_cuts_a_torn_line_continues_the_chain_and_anchors_what_was_left(anchored: Anchored,
                                                                                   tmp_path: Path) -> None:
    path = tmp_path / "audit.log"

    async def unanchored_then_resumed() -> AuditLog:
        first = AuditLog(path, None, flush_interval=0.05)  # the chain is never reached: nothing anchored
        await first.start()
        for i in range(4):
            first.record("anonymous", 0, "POST", "/api/v1/challenge", 200, 0.0, f"a{i}")
        await first.stop()
        path.write_bytes(path.read_bytes() + b'{"seq":4,"prev":"')  # a crash in the middle of a write
        async with ChainClient(anchored.settings(), anchored.deployment) as client:
            async def connected() -> ChainClient:
                return client

            second = AuditLog(path, ChainAnchor(connected, anchored.enclave_key.sign), batch_size=BATCH,
                              anchor_interval=0.2, flush_interval=0.05)
            assert (second.next_seq, second.anchored_seq) == (4, 0)
            await second.start()
            second.record("anonymous", 0, "GET", "/health", 200, 0.0, "b0")
            for _ in range(200):
                if second.anchored_seq == 5:
                    break
                await asyncio.sleep(0.05)
            await second.stop()
            assert [(f, last) for f, last, _ in second.anchored] == [(0, 4)]
            assert [(a.first_seq, a.last_seq) for a in await read_anchors(client)] == [(0, 4)]
            return second

    asyncio.run(unanchored_then_resumed())
    assert [r["request_id"] for r in lines(path)] == ["a0", "a1", "a2", "a3", "b0"]
    assert verify(anchored, path) == (0, "ok: 5 records, 5 anchored in 1 batches")


def test_records_past_the_last_anchor_are_reported_not_refused(anchored: Anchored, log: Path) -> None:
    async def more() -> None:
        extra = AuditLog(log, None, flush_interval=0.05)
        extra.record("anonymous", 0, "GET", "/health", 200, 0.0, "late")
        await extra.flush()

    asyncio.run(more())
    assert verify(anchored, log) == (0, "ok: 26 records, 25 anchored in 3 batches, 1 not anchored yet (seq 25..)")


@pytest.mark.parametrize("option", [{"batch_size": 0}, {"batch_size": 10_001}, {"anchor_interval": 0},
                                    {"flush_interval": True}])
def test_bad_batching_is_refused_naming_the_setting(tmp_path: Path, option: dict) -> None:
    with pytest.raises(InvalidInput) as refused:
        AuditLog(tmp_path / "audit.log", None, **option)
    assert refused.value.field == next(iter(option))
    assert not (tmp_path / "audit.log").exists()


def test_verify_of_a_missing_or_garbled_log_is_one_line(anchored: Anchored, tmp_path: Path) -> None:
    assert verify(anchored, tmp_path / "nope.log") == (
        1, f"k3sdaas-nautilus: audit log {str(tmp_path / 'nope.log')!r} is not a readable file")
    garbled = tmp_path / "garbled.log"
    garbled.write_bytes(b"\xff\xfe not json\n")
    assert verify(anchored, garbled) == (1, "k3sdaas-nautilus: line 1: not an audit record (malformed or truncated)")
