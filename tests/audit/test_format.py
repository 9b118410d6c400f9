"""The writer's fast line format is exactly the canonical JSON a verifier recomputes, for any text."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from k3sdaas.nautilus.audit import GENESIS, AuditLog, canonical, record_hash

text = st.text(max_size=40)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(text, st.integers(0, 4), text, text, st.integers(100, 599), text), min_size=1, max_size=5))
def test_written_lines_are_canonical_json_hash_chained(tmp_path_factory, requests: list) -> None:
    path = Path(tmp_path_factory.mktemp("fmt")) / "audit.log"
    audit = AuditLog(path, None)
    for identity, tier, verb, target, status, request_id in requests:
        audit.record(identity, tier, verb, target, status, 0.000123, request_id)
    asyncio.run(audit.flush())
    prev = GENESIS
    for seq, (raw, request) in enumerate(zip(path.read_bytes().splitlines(), requests, strict=True)):
        record = json.loads(raw)
        assert raw == canonical(record)
        assert record["hash"] == record_hash(record) and record["prev"] == prev and record["seq"] == seq
        assert (record["identity"], record["tier"], record["verb"], record["path"], record["status"],
                record["latency_us"]) == (*request[:5], 123)
        assert record["request_id"] == request[5] if request[5] else record["request_id"].endswith(f"-{seq}")
        prev = record["hash"]


def test_credentials_are_resolved_once_per_batch_and_never_written(tmp_path: Path) -> None:
    asked: list[str | None] = []

    def identify(authorization: str | None) -> tuple[str, int]:
        asked.append(authorization)
        return ("sui:0xabc", 3) if authorization == "Bearer good" else ("invalid-session", 0)

    path = tmp_path / "audit.log"
    audit = AuditLog(path, None, identify=identify)
    for header in ("Bearer good", "Bearer good", "Bearer bad", "", "Bearer good"):
        audit.record_credential(header, "GET", "/api/v1/nodes", 200, 0.001)
    asyncio.run(audit.flush())
    assert asked == ["Bearer good", "Bearer bad", None]
    written = path.read_text()
    assert "Bearer" not in written
    assert [(r["identity"], r["tier"]) for r in map(json.loads, written.splitlines())] == [
        ("sui:0xabc", 3), ("sui:0xabc", 3), ("invalid-session", 0), ("invalid-session", 0), ("sui:0xabc", 3)]
