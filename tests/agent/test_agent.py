"""`k3sdaas-agent` for real: key, register by hand, serve (TLS), heartbeats reaching the master, re-authentication
on session expiry, and a master that fails attestation stops the heartbeats."""

from __future__ import annotations

import json
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from nautilus.conftest import IMAGE_PCRS, SUI, Chain, Master, new_signer

from k3sdaas_localnet.nitro.pki import SimulatedPki

AGENT = [sys.executable, "-m", "k3sdaas.agent"]
POOL_TTL_MS = 30 * 86400 * 1000  # the pool's token lifetime the deployment was published with


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def agent_config(tmp: Path, master: Master, nsm: tuple[str, SimulatedPki], chain: Chain, *,
                 pcr2: bytes = IMAGE_PCRS[2], token_ttl_ms: int | None = None, on_chain: bool = False,
                 refresh_before: int = 86400) -> tuple[Path, Any, int]:
    """The agent's config for a fresh node key owning a fresh token (living ``token_ttl_ms`` when given);
    ``on_chain`` gives the agent the Sui node and the package (and the key gas), so that it may refresh."""
    done = subprocess.run([*AGENT, "key", "--file", str(tmp / "node.key")], capture_output=True, text=True, check=True)
    address = json.loads(done.stdout)["address"]
    assert stat.S_IMODE((tmp / "node.key").stat().st_mode) == 0o600
    owner = type("Owner", (), {"address": address})()
    if token_ttl_ms:
        chain.call(chain.operator, "configure_pool", token_ttl_ms)
    try:
        _, token = chain.stake(1, owner=owner)  # the node key's address owns the token
    finally:
        if token_ttl_ms:
            chain.call(chain.operator, "configure_pool", POOL_TTL_MS)
    (tmp / "root.pem").write_bytes(nsm[1].root_pem())
    port = free_port()
    config = {
        "sui": {"key_file": str(tmp / "node.key"), "token_id": token.token_id},
        "k3s": {"master_url": master.url, "config_dir": str(tmp / "k3s"), "env_file": str(tmp / "k3s.env")},
        "node": {"node_id": token.node_id, "listen_address": "127.0.0.1", "listen_port": port,
                 "state_dir": str(tmp / "state"), "heartbeat_interval": 1},
        "security": {"attestation_root": str(tmp / "root.pem"), "refresh_before": refresh_before,
                     "expected_pcrs": {"pcr0": IMAGE_PCRS[0].hex(), "pcr1": IMAGE_PCRS[1].hex(), "pcr2": pcr2.hex()}},
    }
    if on_chain:
        chain.node.faucet(address, 10 * SUI)  # the refresh is the owner's own transaction
        config["sui"].update(rpc_url=chain.node.url, ca_file=str(chain.node.ca_path),
                             package_id=chain.deployment.package_id)
    path = tmp / "worker-config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, token, port


def serve(tmp: Path, config: Path, port: int) -> Iterator[httpx.Client]:
    log = open(tmp / "agent.log", "wb")  # noqa: SIM115  # the child keeps it
    process = subprocess.Popen([*AGENT, "serve", "--config", str(config)], stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.time() + 30
        while not (tmp / "state" / "tls" / "master.pem").exists() and time.time() < deadline:
            time.sleep(0.1)
        client = httpx.Client(base_url=f"https://127.0.0.1:{port}", timeout=10,
                              verify=ssl.create_default_context(cafile=tmp / "state" / "tls" / "master.pem"))
        while time.time() < deadline:
            try:
                client.get("/health")
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield client
        client.close()
    finally:
        process.terminate()
        process.wait(20)
        log.close()


def node_record(master: Master, chain: Chain, node_id: str) -> dict[str, Any]:
    viewer, token = chain.stake(1)
    nodes = master.get("/api/v1/nodes", master.login(viewer, token.token_id)).json()["nodes"]
    return next(n for n in nodes if n["node_id"] == node_id)


def test_register_by_hand_then_serve_heartbeats_and_reauthenticates(
        tmp_path: Path, master: Master, chain: Chain, nsm_socket: tuple[str, SimulatedPki]) -> None:
    config, token, port = agent_config(tmp_path, master, nsm_socket, chain)
    registered = subprocess.run([*AGENT, "register", "--config", str(config)], capture_output=True, text=True,
                                check=False)
    assert registered.returncode == 0, registered.stderr
    assert json.loads(registered.stdout)["pcrs"]["2"] == IMAGE_PCRS[2].hex()
    assert yaml.safe_load((tmp_path / "k3s" / "config.yaml").read_text())["node-name"] == token.node_id
    assert stat.S_IMODE((tmp_path / "k3s.env").stat().st_mode) == 0o600

    for client in serve(tmp_path, config, port):
        metrics = client.get("/api/v1/metrics").json()
        assert set(metrics) == {"cpu_usage", "memory_usage", "pod_count", "container_count", "network_rx",
                                "network_tx", "timestamp"}
        assert 0 <= metrics["memory_usage"] <= 100 and metrics["network_rx"] > 0
        assert "k3sdaas_agent_memory_usage" in client.get("/metrics").text
        assert client.get("/nope").status_code == 404
        deadline = time.time() + 20
        while time.time() < deadline and client.get("/health").json()["reauthentications"] < 2:
            time.sleep(0.5)
        health = client.get("/health").json()
        assert health["state"] == "heartbeating" and health["heartbeats"] >= 2, health
        assert health["reauthentications"] >= 2, health  # 6-second sessions: the agent renewed by seal proof
        record = node_record(master, chain, token.node_id)
        assert record["status"] == "Ready" and time.time() * 1000 - record["last_seen_ms"] < 5000
        assert "cpu_usage" in record["metrics"]


def test_a_master_failing_attestation_stops_the_heartbeats(
        tmp_path: Path, master: Master, chain: Chain, nsm_socket: tuple[str, SimulatedPki]) -> None:
    config, token, port = agent_config(tmp_path, master, nsm_socket, chain, pcr2=b"\x07" * 48)
    for client in serve(tmp_path, config, port):
        deadline = time.time() + 20
        while time.time() < deadline and client.get("/health").json()["state"] == "starting":
            time.sleep(0.3)
        response = client.get("/health")
        assert response.status_code == 503 and response.json()["state"] == "attestation_failed"
        assert "PCR2" in response.json()["detail"]
    log = (tmp_path / "agent.log").read_text()
    assert "stopped heartbeating: the master no longer matches its expected attestation" in log
    assert not any(n["node_id"] == token.node_id for n in
                   master.get("/api/v1/nodes", master.login(*_viewer(chain))).json()["nodes"])


def _viewer(chain: Chain) -> tuple[Any, str]:
    signer, token = chain.stake(1, owner=new_signer())
    return signer, token.token_id


@pytest.mark.parametrize(("change", "field"), [
    ({"node": {"listen_port": 70000}}, "listen_port"), ({"bogus": {}}, "config"),
    ({"k3s": {"master_url": "http://x"}}, "master_url"), ({"node": {"heartbeat_interval": "often"}}, "heartbeat"),
])
def test_bad_config_exits_1_with_one_line(tmp_path: Path, change: dict[str, Any], field: str) -> None:
    config = {"sui": {"token_id": "0x" + "1" * 64}, "k3s": {"master_url": "https://127.0.0.1:1"},
              "node": {"node_id": "n1"}, "security": {"expected_pcrs": {"pcr0": "00", "pcr1": "00", "pcr2": "00"}}}
    for section, values in change.items():
        config.setdefault(section, {}).update(values)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run([*AGENT, "serve", "--config", str(path)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1 and field in done.stderr, done.stderr


def wait_for(predicate: Any, seconds: float = 30) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def test_the_agent_refreshes_its_token_on_chain_before_expiry(
        tmp_path: Path, master: Master, chain: Chain, nsm_socket: tuple[str, SimulatedPki]) -> None:
    # A token living 60 s, 3600 s being the refresh margin: the agent refreshes it at its first check; the
    # refresh extends it by the pool's lifetime, 30 days again by then.
    config, token, port = agent_config(tmp_path, master, nsm_socket, chain, token_ttl_ms=60_000, on_chain=True,
                                       refresh_before=3600)
    assert token.expires_at_ms - time.time() * 1000 < 61_000
    for client in serve(tmp_path, config, port):
        assert wait_for(lambda: "refreshed seal token" in (tmp_path / "agent.log").read_text()), \
            (tmp_path / "agent.log").read_text()
        refreshed = chain.call(chain.operator, "get_token", token.token_id)
        assert refreshed.expires_at_ms - time.time() * 1000 > POOL_TTL_MS - 600_000
        assert wait_for(lambda client=client: (client.get("/health").json()["token_seconds_left"] or 0) > 3600), \
            client.get("/health").json()
    log = (tmp_path / "agent.log").read_text()
    assert log.count("refreshed seal token") == 1, log  # once: then the token is far from expiry
    assert "EXPIRES IN" not in log


def test_the_agent_warns_loudly_when_it_may_not_refresh(
        tmp_path: Path, master: Master, chain: Chain, nsm_socket: tuple[str, SimulatedPki]) -> None:
    # The same short-lived token, but no chain access configured: the agent cannot send the refresh itself.
    config, token, port = agent_config(tmp_path, master, nsm_socket, chain, token_ttl_ms=60_000,
                                       refresh_before=3600)
    for client in serve(tmp_path, config, port):
        assert wait_for(lambda: "EXPIRES IN" in (tmp_path / "agent.log").read_text())
        assert client.get("/health").json()["state"] == "heartbeating"
    log = (tmp_path / "agent.log").read_text()
    assert f"SEAL TOKEN {token.token_id} EXPIRES IN" in log and "cannot refresh it" in log
    assert "seal_token state=refreshed" in log  # what the operator should run instead
    assert "refreshed seal token" not in log
    after = chain.call(chain.operator, "get_token", token.token_id)
    assert after.expires_at_ms == token.expires_at_ms  # nothing was sent to the chain
