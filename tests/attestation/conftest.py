"""Real AWS documents, their verification times, and a simulated NSM with a fresh test CA."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from k3sdaas.nitro.measure import measure_string
from k3sdaas_localnet.nitro.nsm_sim import SimulatedNsm, boot_pcrs
from k3sdaas_localnet.nitro.pki import SimulatedPki

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nitro" / "attestation"
INSTANCE_ID = "i-0a1b2c3d4e5f60718"
MODULE_ID = f"{INSTANCE_ID}-enc19ab2c3d4e5f601"


@dataclass(frozen=True)
class RealDocument:
    data: bytes
    at: datetime  # the document's own timestamp: inside the window where its whole chain was valid


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@pytest.fixture(scope="session")
def valid_doc() -> RealDocument:
    return RealDocument((FIXTURES / "valid-attestation-doc-bytes").read_bytes(), _at(1665651482136))


@pytest.fixture(scope="session")
def debug_doc() -> RealDocument:
    return RealDocument((FIXTURES / "debug-mode-attestation-doc-bytes").read_bytes(), _at(1665582606081))


@pytest.fixture(scope="session")
def base64_doc() -> RealDocument:
    text = (FIXTURES / "valid-attestation-doc-base64").read_bytes()
    return RealDocument(base64.b64decode(text), _at(1695049410860))


@pytest.fixture(scope="session")
def aws_root_path() -> Path:
    return FIXTURES / "aws-nitro-root-g1.pem"


@pytest.fixture(scope="session")
def test_pki() -> SimulatedPki:
    return SimulatedPki.generate(INSTANCE_ID, datetime.now(UTC))


@pytest.fixture(scope="session")
def image_pcrs() -> tuple[bytes, bytes, bytes]:
    return measure_string(b"kernel"), measure_string(b"bootstrap"), measure_string(b"application")


@pytest.fixture
def make_nsm(test_pki: SimulatedPki, image_pcrs: tuple[bytes, bytes, bytes]) -> Callable[..., SimulatedNsm]:
    def make(debug: bool = False, clock: Callable[[], datetime] | None = None) -> SimulatedNsm:
        pcrs = boot_pcrs(*image_pcrs, instance_pcr=measure_string(INSTANCE_ID), debug=debug)
        return SimulatedNsm(test_pki, MODULE_ID, pcrs, **({"clock": clock} if clock else {}))

    return make
