"""The join path end to end: the master's bootstrap-token code, the stand-in K3s agent, then workloads on the node."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from k3sdaas.nautilus.kube import JoinTokens

from .conftest import start_kube, stop_kube


def test_an_agent_joins_with_a_bootstrap_token_runs_pods_and_goes_not_ready(tmp_path: Path) -> None:
    kube = start_kube(tmp_path / "state", "--node-grace-seconds", "12")  # the agent renews every 10 s
    agent = None
    try:
        token = asyncio.run(JoinTokens(str(kube.kubeconfig), str(kube.state / "ca.pem"), 600).create("node-a")).token
        assert token.startswith("K10") and "::" in token
        (tmp_path / "config.yaml").write_text("node-label: [k3sdaas.io/tier=gold]\n")
        agent = subprocess.Popen([sys.executable, "-m", "k3sdaas_localnet", "k3s", "agent",
                                  "--config", str(tmp_path / "config.yaml"), "--data-dir", str(tmp_path / "data"),
                                  "--server", kube.url, "--token", token, "--node-name", "joined-1"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def node() -> dict:
            return kube.call("GET", "/api/v1/nodes/joined-1")[1]

        def ready() -> str:
            found = node()
            conditions = found.get("status", {}).get("conditions", []) if found["kind"] == "Node" else []
            return next((c["status"] for c in conditions if c["type"] == "Ready"), "")

        deadline = time.monotonic() + 20
        while ready() != "True" and time.monotonic() < deadline:
            time.sleep(0.3)
        assert ready() == "True", node()
        assert node()["metadata"]["labels"]["k3sdaas.io/tier"] == "gold"
        lease = kube.call("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/joined-1")[1]
        assert lease["spec"]["holderIdentity"] == "joined-1"
        template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "w", "image": "n"}]}}
        deployment = {"metadata": {"name": "web"},
                      "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template}}
        assert kube.call("POST", "/apis/apps/v1/namespaces/default/deployments", deployment)[0] == 201
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            pods = kube.call("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb")[1]["items"]
            if len(pods) == 3 and all(p["status"]["phase"] == "Running" for p in pods):
                break
            time.sleep(0.3)
        assert [(p["spec"]["nodeName"], p["status"]["phase"]) for p in pods] == [("joined-1", "Running")] * 3
        agent.terminate()
        assert agent.wait(timeout=15) == 0, agent.communicate()
        deadline = time.monotonic() + 30
        while ready() == "True" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ready() == "Unknown"
    finally:
        if agent and agent.poll() is None:
            agent.kill()
        stop_kube(kube)
