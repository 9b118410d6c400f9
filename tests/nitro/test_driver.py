"""The product nitro-cli driver against the simulator as a separate program: parsed records, typed errors."""

from __future__ import annotations

import os
import sys

import pytest

from k3sdaas.errors import InvalidInput, Unavailable
from k3sdaas.nitro.driver import NitroCli
from k3sdaas.nitro.errors import (
    EnclaveConsoleError,
    EnclaveImageError,
    EnclaveNotFoundError,
    InsufficientResourcesError,
    NitroCliArgumentError,
    parse_error_output,
)
from k3sdaas.nitro.records import FLAGS_DEBUG


@pytest.fixture
def cli(sim_state) -> NitroCli:
    return NitroCli([sys.executable, "-m", "k3sdaas_localnet.nitro.cli"], env=dict(os.environ), timeout=120)


def test_lifecycle(cli, make_eif):
    eif = make_eif("nginx.eif")
    described_eif = cli.describe_eif(eif)
    assert described_eif["CheckCRC"] is True and described_eif["ImageName"] == "nginx"
    run = cli.run_enclave(eif, 1024, cpu_count=2, enclave_cid=20, debug_mode=True)
    assert (run.enclave_name, run.enclave_cid, run.cpu_ids, run.memory_mib) == ("nginx", 20, [1, 3], 1024)
    [described] = cli.describe_enclaves()
    assert described.enclave_id == run.enclave_id and described.flags == FLAGS_DEBUG and described.debug_mode
    assert described.measurements == {
        "HashAlgorithm": "Sha384 { ... }",
        **{key: described_eif["Measurements"][key] for key in ("PCR0", "PCR1", "PCR2")},
    }
    terminated = cli.terminate_enclave(enclave_id=run.enclave_id)
    assert terminated.terminated and terminated.enclave_name == "nginx"
    assert cli.describe_enclaves() == [] and cli.terminate_all() == []


def test_typed_errors(cli, make_eif, tmp_path):
    eif = make_eif("nginx.eif")
    with pytest.raises(InsufficientResourcesError) as memory:
        cli.run_enclave(eif, 0, cpu_count=1)
    assert (memory.value.code, memory.value.codes, memory.value.exit_code) == (26, [26, 39], 39)
    with pytest.raises(NitroCliArgumentError) as cid:
        cli.run_enclave(eif, 64, cpu_count=1, enclave_cid=2)
    assert cid.value.code == 3 and isinstance(cid.value, InvalidInput)
    with pytest.raises(EnclaveNotFoundError):
        cli.terminate_enclave(enclave_name="missing")
    with pytest.raises(EnclaveImageError):
        garbage = tmp_path / "garbage.eif"
        garbage.write_bytes(b"\0" * 1024)
        cli.describe_eif(garbage)
    with pytest.raises(InvalidInput, match="exactly one"):
        cli.run_enclave(eif, 64)
    run = cli.run_enclave(eif, 64, cpu_count=1)
    console = cli.run("console", "--enclave-id", run.enclave_id)
    assert console.exit_code == 44
    assert isinstance(parse_error_output(console.stderr, console.exit_code), EnclaveConsoleError)


def test_missing_binary_is_unavailable():
    with pytest.raises(Unavailable, match="not found"):
        NitroCli(["/nonexistent/nitro-cli"]).describe_enclaves()
