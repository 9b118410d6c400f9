"""What `playbooks/deploy-all.yml` leaves on the local default (testinfra, run by `molecule verify -s e2e`).

Host checks on the master (the simulated Nitro parent) and the workers, then the service from outside as a user
meets it: the operator's kubeconfig through the master's proxy, and stage 4 (4-system-integration-test.yml).
"""

import json
import os
import shutil
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest
import testinfra
import yaml
from testinfra.host import Host

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
DEPLOY = PROJECT / ".state" / "deploy"
KUBECTL = shutil.which("kubectl") or str(PROJECT / ".state/kubectl-1.20/usr/bin/kubectl")
# The deployment's own hosts (inventories/local), reached as Ansible reaches them; molecule's inventory lists none.
MASTER = testinfra.get_host("docker://k3sdaas-master-1")
WORKERS = {name: testinfra.get_host(f"docker://{name}") for name in ("k3sdaas-worker-1", "k3sdaas-worker-2")}


def ansible_env() -> dict[str, str]:
    """The user's environment, not molecule's (its ANSIBLE_CONFIG names no inventory)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "MOLECULE_"))}
    return {**env, "ANSIBLE_COLLECTIONS_PATH": str(PROJECT / "collections")}


def test_master_runs_its_enclave_as_a_sibling_container_without_network() -> None:
    host = MASTER
    described = json.loads(host.check_output("nitro-cli describe-enclaves"))
    assert [e["State"] for e in described] == ["RUNNING"] and described[0]["EnclaveCID"] == 16
    assert described[0]["Flags"] == "NONE"  # not debug mode: the PCRs are real
    networks = subprocess.run(["docker", "ps", "--filter", "label=k3sdaas.nitro.enclave-id", "--format",
                               "{{.Networks}}"], capture_output=True, text=True, check=True).stdout.split()
    assert networks == ["none"]  # the enclave's only ways out are the parent's vsock sockets


def test_the_enclave_anchors_audit_batches_at_the_inventorys_interval() -> None:
    # nautilus_master_audit_interval is baked into the image (measured into the PCRs), not passed at run time.
    (enclave,) = subprocess.run(["docker", "ps", "--filter", "label=k3sdaas.nitro.enclave-id", "--format",
                                 "{{.Names}}"], capture_output=True, text=True, check=True).stdout.split()
    env = json.loads(subprocess.run(["docker", "inspect", "--format", "{{json .Config.Env}}", enclave],
                                    capture_output=True, text=True, check=True).stdout)
    assert "K3SDAAS_NAUTILUS_AUDIT_INTERVAL=2" in env


def test_the_enclave_carries_the_tier_rbac_it_applied() -> None:
    # The objects are in the image (measured), applied by the master with its own credential: no controller step.
    (enclave,) = subprocess.run(["docker", "ps", "--filter", "label=k3sdaas.nitro.enclave-id", "--format",
                                 "{{.Names}}"], capture_output=True, text=True, check=True).stdout.split()
    manifest = subprocess.run(["docker", "exec", enclave, "cat", "/etc/k3sdaas/rbac.yaml"], capture_output=True,
                              text=True, check=True).stdout
    kinds = {doc["kind"] for doc in yaml.safe_load_all(manifest) if doc}
    assert kinds == {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    record = json.loads((DEPLOY / "master.json").read_text())
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # liveness only, as stage 3 asks it
    with urllib.request.urlopen(f"{record['api_url']}/health", context=context, timeout=10) as answer:
        assert json.load(answer)["rbac"] == {"synced": True, "error": None}


@pytest.mark.parametrize(("name", "role"), [("k3sdaas-master-1", "master"), ("k3sdaas-worker-1", "worker"),
                                           ("k3sdaas-worker-2", "worker")])
def test_every_node_knows_its_id_and_role(name: str, role: str) -> None:
    host = MASTER if name == "k3sdaas-master-1" else WORKERS[name]
    assert yaml.safe_load(host.file("/etc/k3sdaas/node.yml").content_string) == {"node_id": name, "role": role}


def test_master_forwards_its_ports() -> None:
    host = MASTER
    for unit in ("k3sdaas-vsock-forward-6443", "k3sdaas-vsock-proxy-sui", "k3sdaas-vsock-proxy-k3s",
                 "nitro-enclaves-allocator"):
        assert host.service(unit).is_running, unit
    assert host.socket("tcp://0.0.0.0:6443").is_listening


@pytest.mark.parametrize("name", sorted(WORKERS))
def test_worker_key_config_and_agents(name: str) -> None:
    host: Host = WORKERS[name]
    key = host.file("/etc/k3sdaas/node.key")
    assert (key.mode, key.user) == (0o600, "k3sdaas-agent")
    config = host.file("/etc/rancher/k3s/config.yaml").content_string
    assert f"node-name: {name}" in config and "k3sdaas.io/tier=developer" in config
    for unit in ("k3s-agent", "k3sdaas-agent"):
        assert host.service(unit).is_running and host.service(unit).is_enabled, unit
    health = host.run("curl -sk https://$(hostname -i | cut -d' ' -f1):8080/health")
    assert health.rc == 0 and json.loads(health.stdout)["status"] == "ok", health.stderr


def test_kubectl_through_the_proxy_lists_the_staked_workers_ready_with_their_tiers() -> None:
    nodes = subprocess.run([KUBECTL, "--kubeconfig", str(DEPLOY / "k3sdaas.kubeconfig"), "get", "nodes", "-o",
                            "json"], capture_output=True, text=True, timeout=60, check=False)
    assert nodes.returncode == 0, nodes.stderr
    seen = {item["metadata"]["name"]: (item["metadata"]["labels"].get("k3sdaas.io/tier"),
                                       [c["status"] for c in item["status"]["conditions"] if c["type"] == "Ready"])
            for item in json.loads(nodes.stdout)["items"]}
    for worker in ("k3sdaas-worker-1", "k3sdaas-worker-2"):
        assert seen.get(worker) == ("developer", ["True"]), seen


def test_the_master_refuses_tls_1_2() -> None:
    context = ssl._create_unverified_context()  # only the protocol version is under test here
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, OSError)):
        urllib.request.urlopen("https://127.0.0.1:6443/health", context=context, timeout=10)


def test_stage_4_passes() -> None:
    run = subprocess.run([str(PROJECT / ".venv/bin/ansible-playbook"), "-i", "inventories/local",
                          "playbooks/4-system-integration-test.yml"],
                         cwd=PROJECT, capture_output=True, text=True, timeout=600, check=False, env=ansible_env())
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
