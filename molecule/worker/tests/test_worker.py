"""What role k3sdaas.core.worker_node and module k3s_join leave on each molecule host (testinfra, `molecule verify`).

The master is the real one prepare.yml started; its node list is read with a session of the scenario's viewer
token, and the Node from the Kubernetes API stand-in with kubectl, as a user would.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from testinfra.host import Host

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
STATE = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "worker"
BIN = PROJECT / ".venv" / "bin"
KUBECTL = shutil.which("kubectl") or str(PROJECT / ".state/kubectl-1.20/usr/bin/kubectl")
METRICS = {"cpu_usage", "memory_usage", "pod_count", "container_count", "network_rx", "network_tx", "timestamp"}


def settings() -> dict:
    return yaml.safe_load((STATE / "master.yml").read_text())


def worker_config(host: Host) -> dict:
    return yaml.safe_load(host.file("/etc/k3sdaas/worker-config.yaml").content_string)


def name_of(host: Host) -> str:
    return host.ansible.get_variables()["inventory_hostname"]


def kubectl(*args: str) -> str:
    result = subprocess.run([KUBECTL, f"--kubeconfig={STATE / 'kube' / 'admin.kubeconfig'}", *args],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def agent_get(host: Host, path: str) -> str:
    """A GET to the agent's TLS API from the node itself, trusting the certificate the agent made."""
    node = worker_config(host)["node"]
    return host.check_output(f"curl -sS --fail --cacert /var/lib/k3sdaas-agent/tls/master.pem "
                             f"https://{node['listen_address']}:{node['listen_port']}{path}")


def test_node_key_is_private_to_the_agent(host: Host) -> None:
    key = host.file("/etc/k3sdaas/node.key")
    assert (key.user, key.group, key.mode) == ("k3sdaas-agent", "k3sdaas-agent", 0o600)
    directory = host.file("/etc/k3sdaas")
    group = host.ansible.get_variables().get("worker_node_config_group", "k3sdaas")  # node_base's group
    assert (directory.user, directory.group, directory.mode) == ("root", group, 0o750)
    assert group in host.user("k3sdaas-agent").groups  # the agent reads its config as a member


def test_k3s_config_names_the_node_its_token_and_the_supervisor(host: Host) -> None:
    config = yaml.safe_load(host.file("/etc/rancher/k3s/config.yaml").content_string)
    kubeconfig = yaml.safe_load((STATE / "kube" / "admin.kubeconfig").read_text())
    token_id = worker_config(host)["sui"]["token_id"]
    assert config == {
        "server": kubeconfig["clusters"][0]["cluster"]["server"],  # what register-worker returned
        "node-name": name_of(host),
        "with-node-id": False,
        "node-label": ["k3sdaas.io/pool=molecule", "k3sdaas.io/tier=developer",
                       f"k3sdaas.io/token-id={token_id.removeprefix('0x')[:16]}"],
        "node-taint": ["k3sdaas.io/staked=true:NoSchedule"],
    }
    env = host.file("/etc/systemd/system/k3s-agent.service.env")
    assert (env.user, env.mode) == ("root", 0o600) and env.content_string.startswith("K3S_TOKEN=K10")


@pytest.mark.parametrize("unit", ["k3s-agent.service", "k3sdaas-agent.service"])
def test_services_are_enabled_and_running(host: Host, unit: str) -> None:
    service = host.service(unit)
    assert service.is_enabled and service.is_running


def test_agent_runs_as_its_own_user(host: Host) -> None:
    assert host.check_output("systemctl show -p User --value k3sdaas-agent.service") == "k3sdaas-agent"
    pid = host.check_output("systemctl show -p MainPID --value k3sdaas-agent.service")
    assert host.check_output(f"stat -c %U /proc/{pid}") == "k3sdaas-agent"  # /proc/PID belongs to the process's user


def test_agent_health_metrics_and_prometheus(host: Host) -> None:
    health = json.loads(agent_get(host, "/health"))
    assert health["state"] == "heartbeating" and health["heartbeats"] >= 1, health
    metrics = json.loads(agent_get(host, "/api/v1/metrics"))
    assert set(metrics) == METRICS
    assert 0 <= metrics["memory_usage"] <= 100 and metrics["network_rx"] > 0
    assert abs(metrics["timestamp"] - time.time()) < 60
    assert "k3sdaas_agent_memory_usage" in agent_get(host, "/metrics")


def test_heartbeats_reach_the_master(host: Host) -> None:
    """GET /api/v1/nodes with a session of the scenario's viewer token (its key is the scenario operator's)."""
    known = settings()
    proof = subprocess.run([str(BIN / "k3sdaas-nautilus"), "proof", "--url", known["worker_master_url"], "--cacert",
                            known["worker_master_cert"], "--key-file", str(STATE / "operator.key"), "--token-id",
                            known["worker_viewer_token"]], capture_output=True, text=True, timeout=60, check=True)
    with httpx.Client(base_url=known["worker_master_url"], verify=known["worker_master_cert"], timeout=30) as master:
        session = master.post("/api/v1/auth", content=proof.stdout).json()["session"]
        deadline = time.time() + 20
        while True:
            nodes = master.get("/api/v1/nodes", headers={"Authorization": f"Bearer {session}"}).json()["nodes"]
            record = next(n for n in nodes if n["node_id"] == name_of(host))
            if time.time() * 1000 - record["last_seen_ms"] < 5000 or time.time() > deadline:
                break
            time.sleep(1)
    assert record["status"] == "Ready" and record["token_id"] == worker_config(host)["sui"]["token_id"]
    assert time.time() * 1000 - record["last_seen_ms"] < 5000, record  # heartbeats every 2 s
    assert set(record["metrics"]) >= METRICS - {"timestamp"}


def test_node_is_ready_in_kubernetes_with_its_labels_and_taints(host: Host) -> None:
    name = name_of(host)
    node = json.loads(kubectl("get", "node", name, "-o", "json"))
    ready = [c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready == ["True"], node["status"]["conditions"]
    labels = node["metadata"]["labels"]
    token_id = worker_config(host)["sui"]["token_id"]
    assert labels["k3sdaas.io/token-id"] == token_id.removeprefix("0x")[:16]
    assert (labels["k3sdaas.io/tier"], labels["k3sdaas.io/pool"]) == ("developer", "molecule")
    assert node["spec"]["taints"] == [{"key": "k3sdaas.io/staked", "value": "true", "effect": "NoSchedule"}]
