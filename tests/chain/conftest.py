"""Fixtures: the local Sui node stand-in, funded signers, and one published k3s_daas deployment.

Everything runs through the unmodified pysui client inside k3sdaas.chain; the node is the stand-in
from k3sdaas_localnet.sui (tests may import it, product code may not).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_crypto import create_new_keypair

from k3sdaas.chain import ChainClient, ChainSettings, Deployment, Signer, dump_build_output, load_build_output
from k3sdaas.chain.keys import signer_from_text
from k3sdaas_localnet.sui.publish import module_markers
from k3sdaas_localnet.sui.testing import LocalNode, running_node

REPO = Path(__file__).resolve().parents[2]
MODULES = ["staking", "registry", "k8s_gateway"]
SUI = 1_000_000_000


def write_build_output(path: Path) -> Path:
    """What `sui move build --dump-bytecode-as-base64` prints, with the stand-in's module markers."""
    path.write_text(dump_build_output(module_markers("k3s_daas", REPO / "move" / "sources", MODULES), ["0x1", "0x2"]))
    return path


def new_signer() -> Signer:
    return signer_from_text(create_new_keypair(scheme=SignatureScheme.ED25519)[1].to_bech32())


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    with running_node(tmp_path_factory.mktemp("sui-node")) as running:
        yield running


@pytest.fixture(scope="session")
def build_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_build_output(tmp_path_factory.mktemp("build") / "k3s_daas.build.json")


@pytest.fixture(scope="session")
def settings_for(node: LocalNode) -> Callable[..., ChainSettings]:
    def make(signer: Signer, **overrides: object) -> ChainSettings:
        options = {"timeout": 10.0, "retries": 1, "retry_delay": 0.05, **overrides}
        return ChainSettings(rpc_url=node.url, signer=signer, ca_file=str(node.ca_path), **options)

    return make


@pytest.fixture(scope="session")
def operator(node: LocalNode) -> Signer:
    signer = new_signer()
    node.faucet(signer.address, 100_000 * SUI)
    return signer


@pytest.fixture(scope="session")
def deployment(operator: Signer, settings_for: Callable[..., ChainSettings], build_output: Path) -> Deployment:
    async def publish() -> Deployment:
        async with ChainClient(settings_for(operator)) as client:
            return await client.publish(*load_build_output(build_output))

    return asyncio.run(publish())


@pytest.fixture
async def client(operator: Signer, settings_for: Callable[..., ChainSettings],
                 deployment: Deployment) -> AsyncIterator[ChainClient]:
    async with ChainClient(settings_for(operator), deployment) as connected:
        yield connected


@pytest.fixture
def node_id() -> str:
    return f"worker-{uuid.uuid4().hex[:12]}"
