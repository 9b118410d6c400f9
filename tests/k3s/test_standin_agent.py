"""The stand-in K3s agent (``k3sdaas-localnet k3s agent``) against the Kubernetes API stand-in: it joins
like ``k3s agent`` (config file, K3S_TOKEN, CA pinned by the token), keeps its Node Ready through its
Lease, reports its pods Running, refuses a wrong CA hash, and stops cleanly on SIGTERM."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from k3sdaas_localnet.k3s.config import ConfigError, parse_taints
from k3sdaas_localnet.k3s.token import JoinError, parse_token

from .conftest import Kube

pytestmark = pytest.mark.slow


def agent_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "k3sdaas_localnet", "k3s", "agent", "--config", str(config)]


def write_config(tmp_path: Path, kube: Kube, **settings: Any) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"server": kube.url, "data-dir": str(tmp_path / "data"), **settings}))
    return path


def wait_for(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def ready(kube: Kube, name: str) -> str:
    try:
        node = client.CoreV1Api(kube.api()).read_node(name)
    except client.ApiException:
        return "absent"
    return next((c.status for c in (node.status and node.status.conditions) or [] if c.type == "Ready"), "none")


@pytest.fixture
def agent(kube: Kube, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    name = f"agent-{tmp_path.name[-12:].lower().replace('_', '-')}".strip("-")
    config = write_config(tmp_path, kube, **{"node-name": name, "node-label": ["k3sdaas.io/tier=viewer"],
                                             "node-taint": ["k3sdaas.io/staked=true:NoSchedule"]})
    process = subprocess.Popen(agent_command(config), env={**os.environ, "K3S_TOKEN": kube.join_token()},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: ready(kube, name) == "True")
    yield process, name
    if process.poll() is None:
        process.kill()
        process.wait()


def test_node_registers_ready_with_labels_taints_and_lease(kube: Kube, agent: tuple[Any, str]) -> None:
    _, name = agent
    api = kube.api()
    node = client.CoreV1Api(api).read_node(name)
    assert node.metadata.labels["k3sdaas.io/tier"] == "viewer"
    assert node.metadata.labels["kubernetes.io/hostname"] == name
    assert node.metadata.labels["kubernetes.io/os"] == "linux"
    assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [("k3sdaas.io/staked", "true", "NoSchedule")]
    assert node.status.node_info.kubelet_version == "v1.31.12+k3s1"
    assert node.status.node_info.container_runtime_version.startswith("simulated://")
    assert int(node.status.capacity["cpu"]) >= 1
    lease = client.CoordinationV1Api(api).read_namespaced_lease(name, "kube-node-lease")
    assert lease.spec.holder_identity == name and lease.spec.lease_duration_seconds == 40


def test_bound_pod_is_reported_running(kube: Kube, agent: tuple[Any, str]) -> None:
    _, name = agent
    core = client.CoreV1Api(kube.api())
    pod = client.V1Pod(metadata=client.V1ObjectMeta(name=f"pod-{name}"),
                       spec=client.V1PodSpec(node_name=name,
                                             containers=[client.V1Container(name="web", image="nginx")]))
    core.create_namespaced_pod("default", pod)
    wait_for(lambda: core.read_namespaced_pod(f"pod-{name}", "default").status.phase == "Running", timeout=30)
    status = core.read_namespaced_pod(f"pod-{name}", "default").status
    assert status.container_statuses[0].ready and status.container_statuses[0].state.running


def test_sigterm_stops_cleanly_and_the_node_turns_not_ready(kube: Kube, agent: tuple[Any, str]) -> None:
    process, name = agent
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert f"node {name} stopped" in process.stdout.read()
    wait_for(lambda: ready(kube, name) != "True", timeout=20)  # the stand-in's grace is 3 s here


def test_the_node_outlives_its_join_token_and_keeps_its_password(kube: Kube, tmp_path: Path) -> None:
    # The master's join tokens live 10 minutes; a node lives on with the credential it got at join.
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=6)
    token = kube.join_token(expires.strftime("%Y-%m-%dT%H:%M:%SZ"))
    config = write_config(tmp_path, kube, **{"node-name": "outlives-token"})

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(agent_command(config), env={**os.environ, "K3S_TOKEN": token},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def renewed() -> dt.datetime:
        lease = client.CoordinationV1Api(kube.api()).read_namespaced_lease("outlives-token", "kube-node-lease")
        return lease.spec.renew_time

    process = start()
    try:
        wait_for(lambda: ready(kube, "outlives-token") == "True")
        secret = client.CoreV1Api(kube.api()).read_namespaced_secret("outlives-token.node-password.k3s", "kube-system")
        assert secret.type == "k3s.cattle.io/node-password" and secret.immutable
        wait_for(lambda: dt.datetime.now(dt.UTC) > expires + dt.timedelta(seconds=1), timeout=10)
        after_expiry = renewed()
        wait_for(lambda: renewed() > after_expiry, timeout=25)  # still renewing its lease (Ready, beyond the grace)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert "401" not in process.stderr.read()

    restarted = start()  # the token has expired: the node's own credential brings it back
    try:
        wait_for(lambda: renewed() > after_expiry + dt.timedelta(seconds=10), timeout=25)
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=10)

    # Another host claiming that node name (its own password) is refused with K3s's words, and keeps asking, as K3s
    # does; once the Node is deleted its password Secret goes too (K3s's node controller) and the new host joins.
    (tmp_path / "impostor").mkdir()
    impostor = write_config(tmp_path / "impostor", kube, **{"node-name": "outlives-token"})
    refused = subprocess.Popen(agent_command(impostor), env={**os.environ, "K3S_TOKEN": kube.join_token()},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert refused.stderr is not None
        assert "403: Node password rejected" in refused.stderr.readline()
        core = client.CoreV1Api(kube.api())
        core.delete_node("outlives-token")
        with pytest.raises(client.ApiException) as gone:
            core.read_namespaced_secret("outlives-token.node-password.k3s", "kube-system")
        assert gone.value.status == 404
        wait_for(lambda: ready(kube, "outlives-token") == "True", timeout=30)
    finally:
        refused.kill()
        refused.wait()


def test_a_node_deleted_while_stopped_rejoins_with_a_new_token(kube: Kube, tmp_path: Path) -> None:
    # k3s-io/k3s#7797: the agent's kubelet certificate and password outlive its Node (a deleted Node, or a host that
    # last joined another cluster); the server refuses that identity and the agent joins again with its token.
    config = write_config(tmp_path, kube, **{"node-name": "deleted-while-stopped"})

    def run_until_ready(token: str) -> str:
        process = subprocess.Popen(agent_command(config), env={**os.environ, "K3S_TOKEN": token},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: ready(kube, "deleted-while-stopped") == "True", timeout=30)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
        return process.stderr.read() if process.stderr else ""

    run_until_ready(kube.join_token())
    certificate = (tmp_path / "data" / "agent" / "client-kubelet.crt").read_bytes()
    client.CoreV1Api(kube.api()).delete_node("deleted-while-stopped")
    assert "401" not in run_until_ready(kube.join_token())
    assert (tmp_path / "data" / "agent" / "client-kubelet.crt").read_bytes() != certificate  # issued again


def test_wrong_ca_hash_is_refused_with_k3s_wording(kube: Kube, tmp_path: Path) -> None:
    token = kube.join_token()
    wrong = "K10" + "0" * 64 + token[67:]
    done = subprocess.run(agent_command(write_config(tmp_path, kube, **{"node-name": "never-joins"})),
                          env={**os.environ, "K3S_TOKEN": wrong}, capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["k3s agent (SIMULATED): token CA hash does not match the Cluster CA "
                                                f"certificate hash: {'0' * 64} != {kube.ca_hash}"]
    assert ready(kube, "never-joins") == "absent"


def test_token_file_from_config_is_read(kube: Kube, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(kube.join_token() + "\n")
    config = write_config(tmp_path, kube, **{"node-name": "from-token-file", "token-file": str(token_file)})
    process = subprocess.Popen(agent_command(config), env={k: v for k, v in os.environ.items() if k != "K3S_TOKEN"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: ready(kube, "from-token-file") == "True")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"server": "http://plain:6444"}, "server: expected an https:// URL"),
        ({"node-label": ["no-equals-sign"]}, "node-label 'no-equals-sign': expected key=value"),
        ({"node-taint": ["k=v:Sometimes"]}, "node-taint 'k=v:Sometimes'"),
        ({"with-node-id": "yes"}, "with-node-id: expected true or false"),
    ],
)
def test_bad_config_exits_1_with_one_line(kube: Kube, tmp_path: Path, settings: dict[str, Any], message: str) -> None:
    done = subprocess.run(agent_command(write_config(tmp_path, kube, **settings)),
                          env={**os.environ, "K3S_TOKEN": "abcdef.0123456789abcdef"},
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert message in line


def test_version_says_simulated() -> None:
    done = subprocess.run([sys.executable, "-m", "k3sdaas_localnet", "k3s", "--version"], capture_output=True,
                          text=True, env={**os.environ, "K3S_SIMULATED_VERSION": "v1.32.9+k3s1"}, check=True)
    assert done.stdout.splitlines()[0] == (
        "k3s version v1.32.9+k3s1 (SIMULATED: k3sdaas-localnet stand-in agent, not K3s)")


@pytest.mark.parametrize(
    ("text", "ca_hash", "authorization"),
    [
        ("K10" + "a" * 64 + "::abcdef.0123456789abcdef", "a" * 64, "Bearer abcdef.0123456789abcdef"),
        ("K10" + "b" * 64 + "::node:secret", "b" * 64, "Basic bm9kZTpzZWNyZXQ="),
        ("abcdef.0123456789abcdef", "", "Bearer abcdef.0123456789abcdef"),
    ],
)
def test_token_formats(text: str, ca_hash: str, authorization: str) -> None:
    token = parse_token(text)
    assert (token.ca_hash, token.authorization()) == (ca_hash, authorization)


def test_malformed_tokens_and_taints_are_refused() -> None:
    with pytest.raises(JoinError, match="64 lowercase hex"):
        parse_token("K10xyz::abcdef.0123456789abcdef")
    with pytest.raises(ConfigError):
        parse_taints(["=v:NoSchedule"])
    assert parse_taints(["dedicated:NoExecute"]) == [{"key": "dedicated", "effect": "NoExecute"}]
