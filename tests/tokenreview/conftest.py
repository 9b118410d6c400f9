"""A master (real `k3sdaas-nautilus serve`) on a private Sui node, and the Kubernetes stand-in configured with
`--authentication-token-webhook-config-file` pointing at the master's TokenReview endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kube.conftest import Kube, start_kube, stop_kube
from nautilus.conftest import SUI, Chain, Master, master_settings, new_signer, publish, simulated_nsm, start_master

from k3sdaas.nautilus.tokenreview import webhook_kubeconfig
from k3sdaas_localnet.sui.testing import running_node

WEBHOOK_TTL = "4s"


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    with running_node(tmp_path_factory.mktemp("sui")) as node:
        operator = new_signer()
        node.faucet(operator.address, 10_000 * SUI)
        yield Chain(node, operator, publish(node, operator))


@pytest.fixture(scope="module")
def nsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, _ = simulated_nsm(str(tmp_path_factory.mktemp("nsm") / "nsm.sock"))
    with server:
        yield server.bound_address


@pytest.fixture(scope="module")
def start(chain: Chain, nsm: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    started: list[Master] = []

    def make(**sections: dict) -> Master:
        state = tmp_path_factory.mktemp("master")
        settings = master_settings(chain, state / "no-kube", nsm, state, **sections)
        master = start_master(state, settings, env={"K3SDAAS_NAUTILUS_AUDIT_INTERVAL": "3600"})
        started.append(master)
        return master

    yield make
    for master in started:
        master.stop()


@pytest.fixture(scope="module")
def master(start) -> Master:
    return start()


@pytest.fixture(scope="module")
def webhook_config(master: Master, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("webhook") / "webhook.kubeconfig"
    path.write_text(webhook_kubeconfig(master.url, master.cert))
    return path


@pytest.fixture(scope="module")
def kube(webhook_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    server = start_kube(tmp_path_factory.mktemp("kube") / "state", "--authentication-token-webhook-config-file",
                        str(webhook_config), "--authentication-token-webhook-cache-ttl", WEBHOOK_TTL)
    yield server
    stop_kube(server)
