"""Property-based fuzzing of every endpoint of /openapi.json: whatever arrives, no 5xx, always a JSON error.

(503 is the one 5xx the API promises, for an unreachable chain, NSM or Kubernetes API; here all are up,
except that this module's master has no Kubernetes API, so register-worker may answer 503 — but only
after a valid seal proof, which random input never is.)
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Master

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | \
    st.text(max_size=80)
JSON = st.recursive(SCALARS, lambda children: st.lists(children, max_size=5) |
                    st.dictionaries(st.text(max_size=12), children, max_size=5), max_leaves=20)
FIELDS = ["token_id", "address", "nonce", "issued_at", "audience", "signature", "node_id", "ip", "capacity",
          "metrics"]
HEX = st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: "0x" + h)
PROOFISH = st.fixed_dictionaries({}, optional={
    "token_id": HEX | st.text(max_size=70), "address": HEX | st.text(max_size=70),
    "nonce": st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=10, max_size=140),
    "issued_at": st.integers(min_value=-1, max_value=10**17), "audience": st.text(max_size=300),
    "signature": st.binary(max_size=120).map(lambda b: base64.b64encode(b).decode()),
    "node_id": st.text(max_size=70), "ip": st.sampled_from(["10.0.0.1", "::1", "999.1.1.1", ""]),
    "capacity": JSON, "metrics": JSON, "nonce_hex": st.text(max_size=20)})
BODIES = PROOFISH | st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6) | JSON
AUTH = st.none() | st.text(max_size=100).map(lambda t: "Bearer " + t) | st.text(max_size=40)


def spec_operations(master: Master) -> list[tuple[str, str]]:
    paths = master.get("/openapi.json").json()["paths"]
    return [(method.upper(), path) for path, item in paths.items() for method in item]


def check(response: Any) -> None:
    assert response.status_code < 500 or response.status_code == 503, (response.status_code, response.text)
    if response.request.url.path != "/metrics":
        assert response.headers["content-type"] == "application/json", response.text
        json.loads(response.text)
    if response.status_code == 503:
        assert response.request.url.path in ("/api/v1/register-worker", "/api/v1/attestation")


def test_every_operation_of_the_spec_is_fuzzed(master: Master) -> None:
    operations = spec_operations(master)
    assert len(operations) == 12

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(operation=st.sampled_from(operations), body=BODIES, auth=AUTH, raw=st.none() | st.binary(max_size=200))
    def fuzz(operation: tuple[str, str], body: Any, auth: str | None, raw: bytes | None) -> None:
        method, path = operation
        auth = (auth or "").strip()
        headers = {"Authorization": auth} if auth and auth.isprintable() and auth.isascii() else {}
        if method == "GET":
            response = master.client.get(path, headers=headers)
        elif raw is not None:
            response = master.client.post(path, content=raw, headers=headers)
        else:
            response = master.client.post(path, json=body, headers=headers)
        check(response)

    fuzz()
    assert master.get("/health").status_code == 200


def test_proofs_with_a_real_nonce_and_random_fields_never_fail_badly(master: Master) -> None:
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=PROOFISH, path=st.sampled_from(["/api/v1/auth", "/api/v1/register-worker"]))
    def fuzz(body: dict[str, Any], path: str) -> None:
        challenge = master.client.post("/api/v1/challenge").json()
        proof = {"nonce": challenge["nonce"], "audience": challenge["audience"], "issued_at": challenge["issued_at"],
                 **body}
        response = master.client.post(path, json=proof)
        check(response)
        assert response.status_code in (400, 401, 403), response.text

    fuzz()
