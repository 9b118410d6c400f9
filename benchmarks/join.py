"""Joining a worker: wall time from nothing to the node Ready, beside the attestation check and the seal login.

Usage: .venv/bin/python benchmarks/join.py [--runs 5]

Starts a Sui node stand-in, the Kubernetes stand-in, a simulated NSM and the master (the harness of
tests/nautilus) in a temporary directory. Each run is a node from nothing: a fresh node key, the
token staked on chain with that owner, then k3s_join's logic (attest, seal login, nodes, register-worker,
config.yaml + env file), then the stand-in K3s agent started with those files until the Node is Ready in
the Kubernetes API. Once more through ``ansible-playbook`` (the module itself, process start-up included).
Target here: the join <= 2 s, chain time included (the seed: about 15 s including staking).

Where the time goes (profiled 2026-12-01, 2-core machine shared by five engineers): a warm join is about 0.1 s
(attestation check 0.04 s, seal login 0.01 s, register-worker 0.02 s); the first register-worker of a fresh
master costs about 1.3 s more, the master importing the `kubernetes` client on first use (0.6 s of imports,
src/k3sdaas/nautilus/kube.py). Through ansible-playbook, about 1 s of the module's run is importing pysui
(its package __init__ loads the gRPC and GraphQL clients) for the node key and the signature.
Last figures: nothing -> Ready median 0.45 s, max 1.20 s (the first node); ansible-playbook run 1.77 s.
"""

from __future__ import annotations

import argparse
import os
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nautilus_http import testkit

from k3sdaas.agent.join import JoinSpec, plan, register
from k3sdaas.agent.master import MasterLink, ensure_node_key
from k3sdaas.attestation import PcrPolicy
from k3sdaas_localnet.sui.testing import running_node

REPO = Path(__file__).resolve().parents[1]


def ready(kube: httpx.Client, node: str, deadline: float) -> bool:
    while time.time() < deadline:
        response = kube.get(f"/api/v1/nodes/{node}")
        if response.status_code == 200 and any(c["type"] == "Ready" and c["status"] == "True"
                                               for c in response.json().get("status", {}).get("conditions", [])):
            return True
        time.sleep(0.05)
    return False


def seconds(samples: list[float]) -> str:
    return f"median {statistics.median(samples):7.3f} s   max {max(samples):7.3f} s   (n={len(samples)})"


def timed(operation: Callable[[], object]) -> float:
    started = time.perf_counter()
    operation()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, choices=range(1, 51), metavar="1-50")
    args = parser.parse_args()
    kit = testkit()
    with tempfile.TemporaryDirectory() as tmp_dir, running_node(Path(tmp_dir) / "sui") as node:
        tmp = Path(tmp_dir)
        operator = kit.new_signer()
        node.faucet(operator.address, 100_000 * kit.SUI)
        chain = kit.Chain(node, operator, kit.publish(node, operator))
        kube_process = kit.start_kube(tmp / "kube")
        server, pki = kit.simulated_nsm(str(tmp / "nsm.sock"))
        found = re.search(r"server: (\S+)", (tmp / "kube" / "admin.kubeconfig").read_text())
        assert found
        kube_url = found.group(1)
        with server:
            master = kit.start_master(tmp / "master", kit.master_settings(
                chain, tmp / "kube", server.bound_address, tmp / "master", k3s={"supervisor_url": kube_url}))
            policy = PcrPolicy.for_image(*kit.IMAGE_PCRS)
            bearer = (tmp / "kube" / "admin.token").read_text().strip()
            kube = httpx.Client(base_url=kube_url, verify=ssl.create_default_context(cafile=tmp / "kube" / "ca.pem"),
                                headers={"Authorization": f"Bearer {bearer}"})
            attest, login, stake, join, register_only, to_ready = [], [], [], [], [], []
            try:
                for run in range(args.runs):
                    work = tmp / f"node{run}"
                    signer, _ = ensure_node_key(work / "node.key")
                    started = time.perf_counter()
                    _, token = chain.stake(1, owner=signer)
                    stake.append(time.perf_counter() - started)
                    link = MasterLink(master.url, root=pki.root.cert, policy=policy)
                    attest.append(timed(link.attest))
                    login.append(timed(lambda link=link, signer=signer, token_id=token.token_id:
                                       link.login(signer, token_id)))
                    spec = JoinSpec(token.token_id, token.node_id, "127.0.0.1", work / "k3s" / "config.yaml",
                                    work / "k3s.env")
                    begun = time.perf_counter()
                    planned = plan(link, signer, spec)
                    registered = time.perf_counter()
                    register(link, signer, spec, planned)
                    join.append(time.perf_counter() - begun)
                    register_only.append(time.perf_counter() - registered)
                    link.close()
                    env = {**os.environ, "K3S_TOKEN": (work / "k3s.env").read_text().strip().split("=", 1)[1]}
                    agent = subprocess.Popen([sys.executable, "-m", "k3sdaas_localnet.k3s", "agent", "--config",
                                              str(spec.config_path), "--data-dir", str(work / "data")], env=env,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    try:
                        if not ready(kube, token.node_id, time.time() + 30):
                            raise SystemExit(f"node {token.node_id} never turned Ready")
                        to_ready.append(time.perf_counter() - started)
                    finally:
                        agent.terminate()
                        agent.wait(10)
                module = ansible_join(tmp, chain, master, pki, kit)
            finally:
                master.stop()
                kube_process.terminate()
                kube_process.wait(10)
    print(f"attestation check alone (fresh nonce, verify, pin)   {seconds(attest)}")
    print(f"seal login alone (challenge, sign, auth)             {seconds(login)}")
    print(f"stake on chain (operator, owner = node key)          {seconds(stake)}")
    print(f"k3s_join logic (attest, login, register, files)      {seconds(join)}")
    print(f"  of which register-worker + files (first: {register_only[0]:.3f} s)  {seconds(register_only)}")
    print(f"nothing -> node Ready (stake + join + agent start)   {seconds(to_ready)}   target <= 2 s")
    print(f"k3s_join through ansible-playbook (one run)          {module:7.3f} s")
    return 0


def ansible_join(tmp: Path, chain: object, master: object, pki: object, kit: object) -> float:
    """The module itself, as a play on localhost (ansible start-up included)."""
    work = tmp / "ansible"
    signer, _ = ensure_node_key(work / "node.key")
    _, token = chain.stake(1, owner=signer)  # type: ignore[attr-defined]
    (work / "root.pem").write_bytes(pki.root_pem())  # type: ignore[attr-defined]
    task = {"master_url": master.url, "token_id": token.token_id, "node_id": token.node_id,  # type: ignore[attr-defined]
            "key_file": str(work / "node.key"), "config_dir": str(work / "k3s"), "env_file": str(work / "k3s.env"),
            "manage_service": False, "attestation_root": str(work / "root.pem"),
            "expected_pcrs": {f"pcr{i}": v.hex() for i, v in enumerate(kit.IMAGE_PCRS)}}  # type: ignore[attr-defined]
    playbook = work / "join.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False,
                                         "tasks": [{"k3sdaas.core.k3s_join": task}]}]))
    command = [str(Path(sys.executable).parent / "ansible-playbook"), str(playbook), "-i", "localhost,", "-c", "local",
               "-e", f"ansible_python_interpreter={sys.executable}"]
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections")}
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
