"""A private Sui node stand-in that trusts a simulated Nitro root, one k3s_daas deployment per test, documents
from the simulated NSM, and the module run through ansible-playbook as a user runs it."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from chain.conftest import SUI, new_signer, write_build_output
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from helpers.playbook import PlaybookRun, run_playbook
from k3sdaas.chain import ChainClient, ChainSettings, Deployment, Signer, load_build_output
from k3sdaas.chain.client import json_value
from k3sdaas.nitro.measure import measure_string
from k3sdaas_localnet.nitro.nsm_sim import SimulatedNsm, boot_pcrs
from k3sdaas_localnet.nitro.pki import SimulatedPki
from k3sdaas_localnet.sui.testing import LocalNode, running_node

INSTANCE_ID = "i-0123456789abcdef0"
MODULE_ID = f"{INSTANCE_ID}-enc0123456789abcdef"
IMAGE_PCRS = (measure_string(b"kernel"), measure_string(b"bootstrap"), measure_string(b"nautilus"))
PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/k3sdaas.core.sui: "{{ sui }}"
  tasks:
    - name: register
      k3sdaas.core.nautilus_register: "{{ args }}"
      register: registered
"""


def pcr_dict(pcrs: tuple[bytes, ...]) -> dict[str, str]:
    return {f"PCR{index}": value.hex() for index, value in enumerate(pcrs)}


@pytest.fixture(scope="session")
def pki() -> SimulatedPki:
    # an hour back, so documents dated in the recent past still chain to valid CA certificates
    return SimulatedPki.generate(INSTANCE_ID, datetime.now(UTC) - timedelta(hours=1))


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory, pki: SimulatedPki) -> Iterator[LocalNode]:
    with running_node(tmp_path_factory.mktemp("nautilus-register-node"), nitro_root=pki.root.cert) as running:
        yield running


@pytest.fixture(scope="session")
def root_file(tmp_path_factory: pytest.TempPathFactory, pki: SimulatedPki) -> Path:
    path = tmp_path_factory.mktemp("nitro-root") / "root.pem"
    path.write_bytes(pki.root.cert.public_bytes(Encoding.PEM))
    return path


@dataclass
class Registry:
    """One fresh deployment, its operator (the AdminCap holder) and a way to run the module against it."""

    node: LocalNode
    operator: Signer
    key_file: Path
    deployment: Deployment
    root_file: Path
    folder: Path

    def settings(self) -> ChainSettings:
        return ChainSettings(rpc_url=self.node.url, signer=self.operator, ca_file=str(self.node.ca_path),
                             timeout=10.0, retries=1)

    def read(self) -> dict[str, Any]:
        """The EnclaveRegistry's fields, read straight from the node."""

        async def go() -> dict[str, Any]:
            async with ChainClient(self.settings(), self.deployment) as client:
                registry = await client.get_object(self.deployment.registry_id)
                return dict(json_value(registry.json))

        fields = asyncio.run(go())
        numbers = ("pcr_version", "enclave_pcr_version", "registered_at_ms")
        return {name: int(value) if name in numbers else base64.b64decode(value).hex()
                for name, value in fields.items() if name != "id"}

    def run(self, *, check: bool = False, diff: bool = False, **args: Any) -> PlaybookRun:
        playbook = self.folder / "register.yml"
        playbook.write_text(PLAYBOOK)
        sui = {"rpc_url": self.node.url, "ca_file": str(self.node.ca_path), "key_file": str(self.key_file),
               "package_id": self.deployment.package_id, "timeout": 20, "retries": 1}
        variables = self.folder / "vars.json"
        variables.write_text(json.dumps({"sui": sui, "args": {"root_ca_file": str(self.root_file), **args}}))
        return run_playbook(playbook, "-e", f"@{variables}", local=True, check=check, diff=diff)

    def result(self, run: PlaybookRun) -> dict[str, Any]:
        return next(result for name, result in run.results() if name == "register")


@pytest.fixture
def registry(node: LocalNode, root_file: Path, tmp_path: Path) -> Registry:
    operator = new_signer()
    node.faucet(operator.address, 100 * SUI)
    key_file = tmp_path / "operator.key"
    key_file.write_text(operator.keystring)
    key_file.chmod(0o600)
    settings = ChainSettings(rpc_url=node.url, signer=operator, ca_file=str(node.ca_path), timeout=10.0)

    async def publish() -> Deployment:
        async with ChainClient(settings) as client:
            return await client.publish(*load_build_output(write_build_output(tmp_path / "build.json")))

    return Registry(node, operator, key_file, asyncio.run(publish()), root_file, tmp_path)


def enclave_key() -> bytes:
    return Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.fixture
def make_document(pki: SimulatedPki) -> Callable[..., bytes]:
    """A document from the simulated NSM for ``public_key``, booted with ``pcrs``, dated ``age`` ago."""

    def make(public_key: bytes, pcrs: tuple[bytes, bytes, bytes] = IMAGE_PCRS, age: timedelta = timedelta(0),
             **fields: bytes) -> bytes:
        nsm = SimulatedNsm(pki, MODULE_ID, boot_pcrs(*pcrs, instance_pcr=measure_string(INSTANCE_ID)),
                           clock=lambda: datetime.now(UTC) - age)
        return nsm.attest(public_key=public_key, **fields)

    return make
