# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of nitro_enclave: resource rules, allocator parsing, build decisions, enclave drift.

The module itself runs through ansible-playbook against the nitro-cli simulator in tests/enclave
at the repository root.
"""

from __future__ import annotations

import pytest

from ansible_collections.k3sdaas.core.plugins.module_utils.nitro import (
    NitroEnclaveError,
    build_reason,
    check_cid,
    check_params,
    check_resources,
    command_argv,
    enclave_drift,
    enclave_view,
    make_record,
    minimum_memory_mib,
    parse_allocator,
    parse_cpu_list,
    read_record,
    record_path,
    threads_per_core,
    write_record,
)

MIB = 1 << 20
PCRS = {"PCR0": "a" * 96, "PCR1": "b" * 96, "PCR2": "c" * 96}
DESCRIBED = {
    "EnclaveName": "master", "EnclaveID": "i-0123-enc1", "ProcessID": 42, "EnclaveCID": 16, "NumberOfCPUs": 2,
    "CPUIDs": [1, 3], "MemoryMiB": 1024, "State": "RUNNING", "Flags": "NONE",
    "Measurements": dict(PCRS, HashAlgorithm="Sha384 { ... }"),
}


def refused(field, **kwargs):
    with pytest.raises(NitroEnclaveError) as caught:
        check_resources(**kwargs)
    assert caught.value.field == field
    return str(caught.value)


def test_cpu_count_must_be_whole_cores_on_smt_hosts():
    assert "even" in refused("cpu_count", cpu_count=3, memory_mib=512, threads=2)
    check_resources(cpu_count=4, memory_mib=512, threads=2)
    check_resources(cpu_count=3, memory_mib=512, threads=1)  # Graviton: one thread per core
    assert "at least 1" in refused("cpu_count", cpu_count=0, memory_mib=512)


def test_memory_floor_and_eif_size():
    assert "at least 64" in refused("memory_mib", cpu_count=2, memory_mib=32)
    message = refused("memory_mib", cpu_count=2, memory_mib=400, eif_size=200 * MIB)
    assert "at least 800 MiB" in message
    check_resources(cpu_count=2, memory_mib=800, eif_size=200 * MIB)
    assert minimum_memory_mib(200 * MIB + 1) == 801 and minimum_memory_mib(1) == 64


def test_allocator_limits_count_other_enclaves():
    allocator = (2048, 4)
    check_resources(cpu_count=2, memory_mib=1024, allocator=allocator, others=[(1024, 2)])
    message = refused("memory_mib", cpu_count=2, memory_mib=1536, allocator=allocator, others=[(1024, 2)])
    assert "1024 MiB the allocator has free" in message and "memory_mib 2048 in allocator.yaml" in message
    assert "2 CPUs" in refused("cpu_count", cpu_count=4, memory_mib=512, allocator=allocator, others=[(512, 2)])


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"memory_mib": 512, "cpu_count": 2}, (512, 2)),
        ({"memory_mib": "4096", "cpu_pool": "2,3,6-9"}, (4096, 6)),
    ],
)
def test_parse_allocator(config, expected):
    assert parse_allocator(config, "allocator.yaml") == expected


@pytest.mark.parametrize(
    "config",
    [None, ["memory_mib"], {"cpu_count": 2}, {"memory_mib": 512, "cpu_count": 2, "cpu_pool": "1"},
     {"memory_mib": 512, "cpu_pool": "3-1"}, {"memory_mib": "lots", "cpu_count": 2}],
)
def test_bad_allocator_files_name_the_option(config):
    with pytest.raises(NitroEnclaveError) as caught:
        parse_allocator(config, "allocator.yaml")
    assert caught.value.field == "allocator_file"


def test_cpu_lists_and_threads_per_core():
    assert parse_cpu_list("0-1,4", "x") == [0, 1, 4]
    assert threads_per_core("0,2\n") == 2 and threads_per_core("0-1") == 2
    assert threads_per_core("0\n") == 1 and threads_per_core("") == 1


def test_command_argv():
    assert command_argv(["python3", "-m", "k3sdaas_localnet.nitro.cli"]) == ["python3", "-m", "k3sdaas_localnet.nitro.cli"]
    assert command_argv("sudo 'nitro-cli'") == ["sudo", "nitro-cli"]
    with pytest.raises(NitroEnclaveError):
        command_argv([])


def test_build_reason_follows_image_signing_and_the_file():
    record = make_record("app:1", "sha256:1", None, dict(PCRS, HashAlgorithm="Sha384 { ... }"), 10)
    assert record["measurements"] == PCRS
    assert build_reason(record, "sha256:1", None, PCRS, True) is None
    assert build_reason(record, "sha256:2", None, PCRS, True) == "image changed from sha256:1 to sha256:2"
    assert build_reason(record, "sha256:1", "ab", PCRS, True) == "signing certificate changed"
    assert build_reason(record, "sha256:1", None, dict(PCRS, PCR0="0" * 96), True) == "EIF does not match its build record"
    assert build_reason(record, "sha256:1", None, PCRS, False) == "EIF does not match its build record"
    assert build_reason(None, "sha256:1", None, PCRS, True) == "no build record next to the EIF"
    assert build_reason(record, "sha256:1", None, None, False) == "no EIF at eif_path"


def test_record_round_trip(tmp_path):
    path = record_path(str(tmp_path / "master.eif"))
    assert path.endswith("master.eif.json") and read_record(path) is None
    record = make_record("app:1", "sha256:1", None, PCRS, 10)
    write_record(path, record)
    assert read_record(path) == record
    (tmp_path / "master.eif.json").write_text("[1]")
    assert read_record(path) is None


def test_enclave_drift():
    enclave = enclave_view(DESCRIBED)
    assert enclave["pcrs"] == PCRS and enclave["cpu_ids"] == [1, 3] and not enclave["debug_mode"]
    assert enclave_drift(enclave, PCRS, 2, 1024, False, None) == []
    assert enclave_drift(enclave, PCRS, 2, 900, False, 16) == []  # more memory than asked is fine
    assert enclave_drift(enclave, dict(PCRS, PCR0="0" * 96), 2, 1024, False, None) == ["PCR0"]
    everything = ["PCR0", "cpu_count", "memory_mib", "debug_mode", "enclave_cid"]
    assert enclave_drift(enclave, None, 4, 2048, True, 17) == everything


def test_every_measured_pcr_counts_as_drift():
    # A new signing certificate rebuilds the EIF with the same PCR0-2 and a new PCR8 only.
    signed = dict(PCRS, PCR8="d" * 96)
    running = enclave_view(dict(DESCRIBED, Measurements=signed))
    assert enclave_drift(running, signed, 2, 1024, False, None) == []
    assert enclave_drift(running, dict(signed, PCR8="e" * 96), 2, 1024, False, None) == ["PCR8"]
    assert enclave_drift(running, PCRS, 2, 1024, False, None) == ["PCR8"]  # signed -> unsigned
    assert enclave_drift(enclave_view(DESCRIBED), signed, 2, 1024, False, None) == ["PCR8"]  # unsigned -> signed
    assert enclave_drift(running, dict(signed, PCR1="f" * 96, PCR2="0" * 96), 2, 1024, False, None) == [
        "PCR1", "PCR2"]


@pytest.mark.parametrize("cid", [0, 1, 2, 3, (1 << 32) - 1])
def test_reserved_cids_are_refused(cid):
    with pytest.raises(NitroEnclaveError) as caught:
        check_cid(cid)
    assert caught.value.field == "enclave_cid"


def test_usable_cids_pass():
    for cid in (None, 4, 16, (1 << 32) - 2):
        check_cid(cid)


def valid_params(tmp_path):
    return dict(enclave_cid=None, nitro_cli=["sh"], docker_uri="app:1", enclave_name=None,
                eif_path=str(tmp_path / "app.eif"), allocator_file=str(tmp_path / "none.yaml"),
                signing_certificate=None, private_key=None)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("eif_path", "."), ("eif_path", "/dev/null"), ("eif_path", "/nonexistent/app.eif"), ("eif_path", ""),
        ("eif_path", "/" + "p" * 5000), ("allocator_file", "/dev/zero"), ("allocator_file", "."),
        ("signing_certificate", "/nonexistent.pem"), ("signing_certificate", "/dev/zero"),
        ("docker_uri", ""), ("docker_uri", "u" * 513), ("enclave_name", " "), ("enclave_name", "e" * 256),
        ("nitro_cli", "/nonexistent/nitro-cli"), ("nitro_cli", "'unclosed"), ("nitro_cli", {"a": 1}),
        ("enclave_cid", 3),
    ],
)
def test_check_params_names_the_bad_option(tmp_path, option, value):
    params = dict(valid_params(tmp_path), **{option: value})
    if option == "signing_certificate":
        params["private_key"] = "arn:aws:kms:us-east-1:111122223333:key/x"
    with pytest.raises(NitroEnclaveError) as caught:
        check_params(params)
    assert caught.value.field == option


def test_check_params_accepts_a_valid_request(tmp_path):
    check_params(valid_params(tmp_path))  # a missing allocator_file is allowed: the module warns
