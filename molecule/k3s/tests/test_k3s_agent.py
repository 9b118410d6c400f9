"""What role k3sdaas.core.k3s_agent (simulated) leaves on each molecule host (testinfra, run by `molecule verify`).

The unit file is compared byte for byte with the one K3s's install script writes (tests/fixtures/k3s), and
the node is read back from the Kubernetes API stand-in with kubectl, as a user would.
"""

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import yaml
from testinfra.host import Host

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
STATE = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "kube"
KUBECONFIG = STATE / "admin.kubeconfig"
VERSION = "v1.31.12+k3s1"
KUBECTL = shutil.which("kubectl") or str(PROJECT / ".state/kubectl-1.20/usr/bin/kubectl")


def host_vars(host: Host) -> dict:
    return host.ansible.get_variables()


def kubectl(*args: str) -> str:
    result = subprocess.run([KUBECTL, f"--kubeconfig={KUBECONFIG}", *args], capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_service_is_enabled_and_running(host: Host) -> None:
    unit = host.service("k3s-agent.service")
    assert unit.is_enabled
    assert unit.is_running


def test_unit_is_the_install_scripts(host: Host) -> None:
    unit = host.file("/etc/systemd/system/k3s-agent.service")
    assert (unit.user, unit.group, unit.mode) == ("root", "root", 0o644)
    assert unit.content == (PROJECT / "tests/fixtures/k3s/k3s-agent.service").read_bytes()


def test_token_is_only_in_the_private_env_file(host: Host) -> None:
    env = host.file("/etc/systemd/system/k3s-agent.service.env")
    assert (env.user, env.group, env.mode) == ("root", "root", 0o600)
    (line,) = env.content_string.splitlines()
    assert line.startswith("K3S_TOKEN=K10") and "::" in line
    assert "K10" not in host.file("/etc/rancher/k3s/config.yaml").content_string


def test_config_carries_the_variables(host: Host) -> None:
    variables = host_vars(host)
    config = yaml.safe_load(host.file("/etc/rancher/k3s/config.yaml").content_string)
    labels = {"k3sdaas.io/tier": "developer", "k3sdaas.io/pool": "molecule",
              "k3sdaas.io/token-id": variables["k3s_agent_token_id"], **variables.get("k3s_agent_node_labels", {})}
    assert config == {
        "server": yaml.safe_load((STATE / "join.yml").read_text())["k3s_agent_server"],
        "node-name": variables["inventory_hostname"],
        "with-node-id": False,
        "node-label": sorted(f"{key}={value}" for key, value in labels.items()),
        "node-taint": ["k3sdaas.io/staked=true:NoSchedule"],
    }


def test_k3s_is_the_simulated_stand_in(host: Host) -> None:
    out = host.check_output("k3s --version")
    assert out.startswith(f"k3s version {VERSION} (SIMULATED")
    assert "SIMULATED" in host.file("/usr/local/bin/k3s").content_string


def test_node_is_ready_with_its_labels_and_taints(host: Host) -> None:
    name = host_vars(host)["inventory_hostname"]
    table = kubectl("get", "nodes", "--no-headers")
    assert any(line.split()[:2] == [name, "Ready"] for line in table.splitlines()), table
    node = json.loads(kubectl("get", "node", name, "-o", "json"))
    labels = node["metadata"]["labels"]
    assert labels["k3sdaas.io/tier"] == "developer"
    assert labels["k3sdaas.io/token-id"] == host_vars(host)["k3s_agent_token_id"]
    assert labels["kubernetes.io/hostname"] == name
    assert node["spec"]["taints"] == [{"key": "k3sdaas.io/staked", "value": "true", "effect": "NoSchedule"}]
    assert node["status"]["nodeInfo"]["kubeletVersion"] == VERSION
    internal = [a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"]
    assert internal == [host.interface("eth0").addresses[0]]


def test_lease_is_renewed(host: Host) -> None:
    name = host_vars(host)["inventory_hostname"]
    lease = json.loads(kubectl("get", "lease", "-n", "kube-node-lease", name, "-o", "json"))
    assert lease["spec"]["holderIdentity"] == name
    assert lease["spec"]["leaseDurationSeconds"] == 40
    renewed = datetime.fromisoformat(lease["spec"]["renewTime"])
    assert (datetime.now(UTC) - renewed).total_seconds() < 30
