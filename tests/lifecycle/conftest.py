"""The day-2 playbooks (rotate-seal-tokens, slash-recovery, unstake, upgrade, teardown) run as users run them,
against a private Sui node with this module's own published package (chain.conftest's node and build) and a
private Kubernetes stand-in (kube.conftest's), so nothing shared is touched."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from chain.conftest import SUI, build_output, new_signer, node, settings_for  # noqa: F401  # fixtures, used by name
from kube.conftest import Kube, kube  # noqa: F401  # fixture, used by name

from helpers.playbook import REPO, PlaybookRun, run_playbook
from k3sdaas.chain import ChainClient, ChainSettings, Deployment, Signer, load_build_output
from k3sdaas_localnet.sui.testing import LocalNode

T = TypeVar("T")


@dataclass
class Cluster:
    """One operator with its own k3s_daas deployment, an inventory pointing at it, and the playbooks' runner."""

    node: LocalNode
    operator: Signer
    deployment: Deployment
    settings: ChainSettings
    directory: Path
    kube: Kube

    def chain(self, call: Callable[[ChainClient], Awaitable[T]]) -> T:
        async def run() -> T:
            async with ChainClient(self.settings, self.deployment) as client:
                return await call(client)

        return asyncio.run(run())

    def token(self, node_id: str) -> Any:
        return self.chain(lambda client: client.find_token(node_id))

    def inventory(self, workers: dict[str, dict[str, Any]] | None = None, **group_vars: Any) -> Path:
        """An inventory like the deployment's: localhost, k3sdaas_master (empty) and k3sdaas_workers."""
        key = self.directory / "operator.key"
        key.write_text(self.operator.keystring)
        key.chmod(0o600)
        content = {"all": {
            "hosts": {"localhost": {"ansible_connection": "local",
                                    "ansible_python_interpreter": "{{ ansible_playbook_python }}"}},
            "vars": {"k3sdaas_infrastructure": "local", "k3sdaas_sui_package_id": self.deployment.package_id,
                     "k3sdaas_kubeconfig": str(self.kube.kubeconfig), "worker_node_source": str(REPO),
                     "k3sdaas_sui_environment": {"SUI_RPC_URL": self.node.url, "SUI_KEY_FILE": str(key),
                                                 "SUI_CA_FILE": str(self.node.ca_path)},
                     **group_vars},
            "children": {"k3sdaas_nodes": {"children": {"k3sdaas_master": {"hosts": {}},
                                                        "k3sdaas_workers": {"hosts": workers or {}}}}}}}
        path = self.directory / f"inventory-{uuid.uuid4().hex[:8]}.yml"
        path.write_text(yaml.safe_dump(content))
        return path

    def run(self, name: str, inventory: Path | None = None, **extra_vars: Any) -> PlaybookRun:
        """playbooks/<name>.yml through the project wrapper, as a user runs it."""
        return run_playbook(REPO / "playbooks" / f"{name}.yml", inventory=str(inventory or self.inventory()),
                            extra_vars=extra_vars, timeout=300)


def summary(run: PlaybookRun) -> dict[str, Any]:
    """The msg of the playbook's final "Summary" task."""
    found = [result["msg"] for name, result in run.results() if name == "Summary"]
    assert found, run.output
    return found[-1]  # type: ignore[no-any-return]


def changed(run: PlaybookRun) -> int:
    assert run.returncode == 0, run.output
    return sum(host["changed"] for host in run.stats.values())


@pytest.fixture(scope="module")
def cluster(node: LocalNode, build_output: Path, settings_for: Callable[..., ChainSettings],  # noqa: F811
            kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Cluster:  # noqa: F811
    operator = new_signer()
    node.faucet(operator.address, 1_000 * SUI)
    settings = settings_for(operator)

    async def publish() -> Deployment:
        async with ChainClient(settings) as client:
            return await client.publish(*load_build_output(build_output))

    return Cluster(node, operator, asyncio.run(publish()), settings, tmp_path_factory.mktemp("lifecycle"), kube)


@pytest.fixture
def node_ids() -> Callable[[int], list[str]]:
    """Fresh node ids (DNS names, so they are valid Kubernetes node names too)."""
    return lambda count: [f"lc-{uuid.uuid4().hex[:10]}" for _ in range(count)]
