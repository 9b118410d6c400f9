"""The running master audits its own requests: its enclave key, registered on chain from its attestation
document, anchors the batches, and `audit verify` accepts the log it wrote."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator

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
def master_on_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Master, Anchored]]:
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
                                   sui={"key_file": str(key_file)})
        master = start_master(state, settings,
                              env={"K3SDAAS_NAUTILUS_AUDIT_BATCH": "8", "K3SDAAS_NAUTILUS_AUDIT_INTERVAL": "0.5"})
        document = base64.b64decode(master.client.post("/api/v1/attestation", json={"nonce": "ab" * 16})
                                    .json()["document"])

        async def register() -> None:
            async with ChainClient(chain.settings(operator), chain.deployment) as client:
                await client.update_pcrs(*IMAGE_PCRS)
                await client.register_enclave(document)

        asyncio.run(register())
        yield master, Anchored(node, operator, chain.deployment, None)  # type: ignore[arg-type]
        master.stop()


def test_the_master_records_every_request_and_anchors_it_with_its_enclave_key(
        master_on_chain: tuple[Master, Anchored]) -> None:
    master, anchored = master_on_chain
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
