"""The running master audits its own requests: its enclave key, registered on chain from its attestation
document, anchors the batches, and `audit verify` accepts the log it wrote."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from nautilus.conftest import (
    IMAGE_PCRS,
    SUI,
    Chain,
    Master,
    master_settings,
    new_signer,
    publish,
    simulated_nsm,
    start_master,
)

from k3sdaas.chain import ChainClient
from k3sdaas_localnet.sui.testing import running_node

from .conftest import Anchored


@pytest.fixture(scope="module")
def master_on_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Master, Anchored, Chain]]:
    server, pki = simulated_nsm(str(tmp_path_factory.mktemp("nsm") / "nsm.sock"))
    with server, running_node(tmp_path_factory.mktemp("sui"), nitro_root=pki.root.cert) as node:
        operator = new_signer()
        node.faucet(operator.address, 1000 * SUI)
        chain = Chain(node, operator, publish(node, operator))
        state = tmp_path_factory.mktemp("master")
        gas = chain.funded(10)  # the master's own Sui key pays for the anchors
        key_file = state / "sui.key"
        key_file.write_text(gas.keystring)
        key_file.chmod(0o600)
        settings = master_settings(chain, state / "no-kube", server.bound_address, state,
                                   # the pool named, as role nautilus_master writes it: the registry still resolved
                                   sui={"key_file": str(key_file), "pool_id": chain.deployment.pool_id})
        master = start_master(state, settings,
                              env={"K3SDAAS_NAUTILUS_AUDIT_BATCH": "8", "K3SDAAS_NAUTILUS_AUDIT_INTERVAL": "0.5"})
        document = base64.b64decode(master.client.post("/api/v1/attestation", json={"nonce": "ab" * 16})
                                    .json()["document"])

        async def register() -> None:
            async with ChainClient(chain.settings(operator), chain.deployment) as client:
                await client.update_pcrs(*IMAGE_PCRS)
                await client.register_enclave(document)

        asyncio.run(register())
        yield master, Anchored(node, operator, chain.deployment, None), chain  # type: ignore[arg-type]
        master.stop()


def test_the_master_records_every_request_and_anchors_it_with_its_enclave_key(
        master_on_chain: tuple[Master, Anchored, Chain]) -> None:
    master, anchored, _ = master_on_chain
    for _ in range(10):
        assert master.get("/health").status_code == 200
    assert master.get("/api/v1/nodes", "forged").status_code == 401
    assert master.get("/no/such/route").status_code == 404
    log = master.state / "audit.log"
    deadline = time.monotonic() + 20
    while True:
        done = anchored.cli("verify", str(log))
        if done.returncode == 0 and "not anchored yet" not in done.stdout:
            break
        assert time.monotonic() < deadline, done.stdout + done.stderr
        time.sleep(0.5)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    ours = [(r["verb"], r["path"], r["status"], r["identity"]) for r in records if r["path"] != "/api/v1/attestation"]
    assert ours[-2:] == [("GET", "/api/v1/nodes", 401, "invalid-session"), ("GET", "/no/such/route", 404, "anonymous")]
    assert ours.count(("GET", "/health", 200, "anonymous")) >= 10
    assert all(r["latency_us"] >= 0 for r in records)
    assert done.stdout.startswith(f"ok: {len(records)} records, {len(records)} anchored in ")


def test_an_admin_gets_the_proof_of_its_request_which_the_chain_confirms(
        master_on_chain: tuple[Master, Anchored, Chain], tmp_path: Path) -> None:
    master, anchored, chain = master_on_chain
    staked = {tier: chain.stake(amount) for tier, amount in (("admin", 5), ("developer", 2))}
    sessions = {tier: master.login(owner, token.token_id) for tier, (owner, token) in staked.items()}
    request_id = f"proof-{uuid.uuid4().hex}"
    asked = master.client.get("/api/v1/nodes", headers={"Authorization": f"Bearer {sessions['developer']}",
                                                        "X-Request-Id": request_id})
    assert asked.status_code == 200

    def proof(session: str | None, query: str = request_id) -> httpx.Response:
        headers = {"Authorization": f"Bearer {session}"} if session else {}
        return master.client.get("/audit/proof", params={"request_id": query}, headers=headers)

    deadline = time.monotonic() + 30
    answer = proof(sessions["admin"])
    while answer.status_code in (404, 409):  # not written yet, then not anchored yet: both say so and the caller waits
        assert answer.json()["error"] in ("audit_record_unknown", "audit_not_anchored"), answer.text
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.5)
        answer = proof(sessions["admin"])
    assert answer.status_code == 200, answer.text
    record = answer.json()["record"]
    assert (record["request_id"], record["path"], record["status"], record["tier"]) == (
        request_id, "/api/v1/nodes", 200, 2)
    saved = tmp_path / "proof.json"
    saved.write_text(answer.text)
    checked = anchored.cli("check-proof", str(saved))
    assert checked.returncode == 0 and checked.stdout.startswith(f"ok: record seq {record['seq']} is in batch"), \
        checked.stdout + checked.stderr

    # Records name identities and paths: below the admin tier, or without a session, there is no proof.
    refused = proof(sessions["developer"])
    assert (refused.status_code, refused.json()["error"]) == (403, "tier_too_low")
    assert proof(None).status_code == 401
    for bad in ("", "x" * 129):
        wrong = proof(sessions["admin"], bad)
        assert (wrong.status_code, wrong.json().get("field")) == (400, "request_id"), wrong.text
    unknown = proof(sessions["admin"], "never-sent")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "audit_record_unknown")
