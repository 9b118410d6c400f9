"""nitro-cli's JSON records and error blocks reproduce the golden transcripts byte for byte."""

from __future__ import annotations

import json

import pytest

from k3sdaas.nitro.eif import Measurements
from k3sdaas.nitro.errors import (
    ERROR_TABLE,
    EnclaveNotFoundError,
    InsufficientResourcesError,
    NitroCliError,
    error_block,
    error_message,
    parse_error_output,
)
from k3sdaas.nitro.records import EnclaveDescribeInfo, EnclaveRunInfo, EnclaveTerminateInfo, render_json

from .conftest import golden, normalise_log_paths


@pytest.mark.parametrize(
    ("name", "record"),
    [("run-enclave.stdout", EnclaveRunInfo), ("terminate-enclave.stdout", EnclaveTerminateInfo)],
)
def test_object_records_roundtrip_golden(name, record):
    text = golden(name)
    assert render_json(record.from_json(json.loads(text)).to_json()) == text


@pytest.mark.parametrize(
    ("name", "record"),
    [
        ("describe-enclaves.stdout", EnclaveDescribeInfo),
        ("describe-enclaves-empty.stdout", EnclaveDescribeInfo),
        ("terminate-enclave-all.stdout", EnclaveTerminateInfo),
    ],
)
def test_array_records_roundtrip_golden(name, record):
    text = golden(name)
    assert render_json([record.from_json(item).to_json() for item in json.loads(text)]) == text


def test_run_info_from_values_matches_golden():
    info = EnclaveRunInfo("nginx", "i-085fa5ca0e3bda2cb-enc199a65df9f4c82b", 81699, 17, 2, [1, 3], 1024)
    assert render_json(info.to_json()) == golden("run-enclave.stdout")


@pytest.mark.parametrize("name", ["build-enclave.stdout", "build-enclave-signed.stdout"])
def test_measurements_match_golden(name):
    values = json.loads(golden(name))["Measurements"]
    pcr8 = bytes.fromhex(values["PCR8"]) if "PCR8" in values else None
    measured = Measurements(*(bytes.fromhex(values[key]) for key in ("PCR0", "PCR1", "PCR2")), pcr8=pcr8)
    assert render_json({"Measurements": measured.as_nitro_cli()}) == golden(name)


def test_terminate_without_name_leaves_the_key_out():
    assert list(EnclaveTerminateInfo(None, "i-1-enc1", True).to_json()) == ["EnclaveID", "Terminated"]


def test_error_table_is_complete():
    assert [code for code, _, _ in ERROR_TABLE] == list(range(61))
    assert error_message(26, ["memory", 512, 820]).endswith("the minimum memory should be 820 MB")
    assert error_message(26, ["memory", 0]).endswith("and memory should be greater than 0 MB.")
    assert error_message(1) == "Missing mandatory argument. User did not provide the `MISSING_INFO` argument."
    assert error_message(19, ["/x.eif", "Open"]).endswith("\nFile: '/x.eif', failing operation: 'Open'.")


def test_error_blocks_match_golden():
    expected = normalise_log_paths(golden("run-enclave-E26.stderr"))
    produced = error_block(26, ["memory", 512, 820], "x/err2025-10-05T13:14:50.000000000+00:00.log")
    produced += "Failed connections: 1\n" + error_block(39, [], "x/err2025-10-05T13:14:50.000500000+00:00.log")
    assert normalise_log_paths(produced) == expected
    e29 = "Start allocating memory...\n" + error_block(
        29, [], "/var/log/nitro_enclaves/err2025-10-05T13:43:02.444184198+00:00.log"
    )
    e29 += "Failed connections: 1\n" + error_block(
        39, [], "/var/log/nitro_enclaves/err2025-10-05T13:43:02.446452577+00:00.log"
    )
    assert e29 == golden("run-enclave-E29-E39.stderr")


def test_stderr_maps_to_typed_errors():
    e26 = parse_error_output(golden("run-enclave-E26.stderr"), 39)
    assert isinstance(e26, InsufficientResourcesError) and (e26.code, e26.codes, e26.exit_code) == (26, [26, 39], 39)
    assert e26.name == "InsufficientMemoryRequested" and "820 MB" in str(e26)
    e29 = parse_error_output(golden("run-enclave-E29-E39.stderr"), 39)
    assert type(e29) is NitroCliError and e29.code == 29 and e29.name == "IoctlFailure"
    e11 = parse_error_output(error_block(11, [], "/x"), 11)
    assert isinstance(e11, EnclaveNotFoundError) and e11.exit_code == 11
    unknown = parse_error_output("error: unexpected argument '--bogus'\n", 2)
    assert unknown.code == 0 and unknown.exit_code == 2 and "--bogus" in str(unknown)
