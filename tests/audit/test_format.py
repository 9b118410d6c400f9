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
                record["request_id"], record["latency_us"]) == (*request[:5], request[5], 123)
        prev = record["hash"]
