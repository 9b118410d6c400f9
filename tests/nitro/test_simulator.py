"""The nitro-cli simulator with headless enclaves (no Docker): outputs against the golden transcripts."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from k3sdaas.attestation import PcrPolicy, load_root, verify_attestation
from k3sdaas.attestation.nsm import NsmClient, SocketTransport
from k3sdaas.nitro.eif import read_eif
from k3sdaas.nitro.measure import ZERO_PCR, measure_string

from .conftest import GOLDEN, GOLDEN_INSTANCE, golden, normalise_log_paths

ID = re.compile(rf"{GOLDEN_INSTANCE}-enc[0-9a-f]+")
GOLDEN_ID = "i-085fa5ca0e3bda2cb-enc199a65df9f4c82b"


def _exits(pid: int, timeout: float = 10.0) -> bool:
    """The enclave process is our child when the simulator runs in-process: reap it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            return True
        time.sleep(0.05)
    return False


def _run(sim, eif, *extra: str, cpus: str = "2") -> tuple[dict, object]:
    result = sim("run-enclave", "--eif-path", str(eif), "--memory", "1024", "--cpu-count", cpus, *extra)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout), result


def _as_golden(text: str, info: dict) -> str:
    return text.replace(info["EnclaveID"], GOLDEN_ID).replace(
        f'"ProcessID": {info["ProcessID"]},', '"ProcessID": 81699,'
    )


def test_run_describe_terminate_match_golden(sim, make_eif):
    eif = make_eif("nginx.eif")
    info, result = _run(sim, eif, "--enclave-cid", "17", "--debug-mode")
    assert result.stderr == golden("run-enclave.stderr")
    assert ID.fullmatch(info["EnclaveID"]) and os.kill(info["ProcessID"], 0) is None
    assert _as_golden(result.stdout, info) == golden("run-enclave.stdout")

    described = sim("describe-enclaves")
    expected = golden("describe-enclaves.stdout")
    golden_pcrs = json.loads(expected)[0]["Measurements"]
    for name, value in read_eif(eif).measurements.as_nitro_cli().items():
        expected = expected.replace(golden_pcrs[name], value)
    assert described.code == 0 and _as_golden(described.stdout, info) == expected

    terminated = sim("terminate-enclave", "--enclave-id", info["EnclaveID"])
    assert terminated.code == 0
    assert _as_golden(terminated.stderr, info) == golden("terminate-enclave.stderr")
    assert _as_golden(terminated.stdout, info) == golden("terminate-enclave.stdout")
    assert _exits(info["ProcessID"])
    assert sim("describe-enclaves").stdout == golden("describe-enclaves-empty.stdout")


def test_terminate_all_prints_an_array(sim, make_eif):
    info, _ = _run(sim, make_eif("nginx.eif"), "--enclave-cid", "17")
    result = sim("terminate-enclave", "--all")
    assert result.code == 0 and _as_golden(result.stdout, info) == golden("terminate-enclave-all.stdout")
    assert sim("terminate-enclave", "--all").stdout == "[]\n"


def test_names_cids_and_cpus_are_allocated_like_nitro_cli(sim, make_eif, tmp_path, monkeypatch):
    allocator = tmp_path / "allocator.yaml"
    allocator.write_text("---\nmemory_mib: 4096\ncpu_pool: 1-4\n")
    monkeypatch.setenv("K3SDAAS_NITRO_SIM_ALLOCATOR", str(allocator))
    eif = make_eif("app.eif")
    first, _ = _run(sim, eif)
    second, zero = _run(sim, eif, "--enclave-cid", "0")
    assert (first["EnclaveName"], first["EnclaveCID"], first["CPUIDs"]) == ("app", 16, [1, 2])
    assert (second["EnclaveName"], second["EnclaveCID"], second["CPUIDs"]) == ("app_1", 17, [3, 4])
    assert "The enclave CID will be auto-generated as the provided CID is 0\n" in zero.stderr
    assert int(first["EnclaveID"].rsplit("-enc", 1)[1], 16) < int(second["EnclaveID"].rsplit("-enc", 1)[1], 16)
    no_cpus = sim("run-enclave", "--eif-path", str(eif), "--memory", "64", "--cpu-count", "1")
    assert no_cpus.code == 39 and "[ E22 ] Insufficient CPUs available in the pool." in no_cpus.stderr
    named = sim("terminate-enclave", "--enclave-name", "app_1")
    assert named.code == 0 and json.loads(named.stdout)["EnclaveName"] == "app_1"
    taken = sim("run-enclave", "--eif-path", str(eif), "--memory", "64", "--cpu-ids", "1", "9")
    assert (
        taken.code == 39
        and "[ E21 ] No such CPU available in the pool. User provided `cpu-ids` contains CPU 1," in taken.stderr
    )


def test_insufficient_memory_matches_golden(sim, make_eif, tmp_path):
    # 820 MB is the minimum for EIFs of (819/4, 820/4] MiB, like the golden payments-app image.
    eif = make_eif("big.eif", files={"blob": b"\0" * (205 * 1024 * 1024 - 100_000)})
    assert -(-4 * eif.stat().st_size // (1 << 20)) == 820
    result = sim("run-enclave", "--eif-path", str(eif), "--memory", "512", "--cpu-count", "1")
    assert result.code == 39 and result.stdout == ""
    assert normalise_log_paths(result.stderr) == normalise_log_paths(golden("run-enclave-E26.stderr"))


def test_inner_failure_matches_golden_e29_e39(sim, make_eif, tmp_path, monkeypatch):
    allocator = tmp_path / "allocator.yaml"  # room for two enclaves: the CID clash, not the CPU pool, must fail
    allocator.write_text("---\nmemory_mib: 4096\ncpu_pool: 1-4\n")
    monkeypatch.setenv("K3SDAAS_NITRO_SIM_ALLOCATOR", str(allocator))
    eif = make_eif("nginx.eif")
    _run(sim, eif, "--enclave-cid", "17")
    clash = sim("run-enclave", "--eif-path", str(eif), "--memory", "64", "--cpu-count", "2", "--enclave-cid", "17")
    assert clash.code == 39
    assert normalise_log_paths(clash.stderr) == normalise_log_paths(golden("run-enclave-E29-E39.stderr"))
    log = re.search(r'error log found at "([^"]+)"', clash.stderr).group(1)
    assert Path(log).read_text().startswith("[ E29 ] Ioctl failure.")


@pytest.mark.parametrize(
    ("argv", "code", "head"),
    [
        (
            ["--enclave-cid", "3"],
            3,
            "[ E03 ] Invalid argument provided. The parameter `enclave-cid` is not a valid integer (`3`)",
        ),
        (
            ["--enclave-cid", "x"],
            3,
            "[ E03 ] Invalid argument provided. The parameter `enclave-cid` is not a valid integer (`x`)",
        ),
        (["--cpu-ids", "1"], 2, "[ E02 ] Conflicting arguments. User provided both `cpu-count` and `cpu-ids`."),
    ],
)
def test_argument_errors(sim, make_eif, argv, code, head):
    result = sim("run-enclave", "--eif-path", str(make_eif()), "--memory", "64", "--cpu-count", "1", *argv)
    assert result.code == code and result.stderr.startswith(head + "\n\nFor more details")
    assert "Failed connections" not in result.stderr


def test_memory_beyond_the_shipped_allocator_is_e27(sim, make_eif, monkeypatch):
    monkeypatch.setenv("K3SDAAS_NITRO_SIM_ALLOCATOR", str(GOLDEN / "allocator.yaml"))  # memory_mib: 512
    result = sim("run-enclave", "--eif-path", str(make_eif()), "--memory", "1G", "--cpu-count", "2")
    assert result.code == 39
    assert "[ E27 ] Insufficient memory available. User provided `memory` is 1024 MB" in result.stderr


def test_unknown_enclaves(sim):
    by_id = sim("terminate-enclave", "--enclave-id", f"{GOLDEN_INSTANCE}-enc1234")
    assert by_id.code == 11 and by_id.stderr.startswith("[ E11 ] Socket error.") and by_id.stdout == ""
    by_name = sim("console", "--enclave-name", "nobody")
    assert by_name.code == 58 and by_name.stderr.startswith("[ E58 ] Naming error.")


def test_console_needs_debug_mode(sim, make_eif):
    production, _ = _run(sim, make_eif("prod.eif"), cpus="1")
    refused = sim("console", "--enclave-id", production["EnclaveID"])
    assert refused.code == 44 and refused.stderr.startswith("[ E44 ] Enclave console connection failure.")
    _run(sim, make_eif("nginx.eif"), "--debug-mode", "--enclave-cid", "17", cpus="1")
    attached = sim("console", "--enclave-name", "nginx", "--disconnect-timeout", "0.5")
    assert attached.code == 0
    banner = "".join(golden("console.stdout").splitlines(keepends=True)[:2])
    assert attached.stdout.startswith(banner)
    assert "[    0.000000] Linux version 4.14.256" in attached.stdout


def test_dead_enclave_process_is_a_failed_connection(sim, sim_state, make_eif):
    alive, _ = _run(sim, make_eif("alive.eif"), cpus="1")
    dead, _ = _run(sim, make_eif("dead.eif"), cpus="1")
    os.kill(dead["ProcessID"], signal.SIGKILL)
    os.waitpid(dead["ProcessID"], 0)
    result = sim("describe-enclaves")
    assert result.code == 39
    assert [item["EnclaveID"] for item in json.loads(result.stdout)] == [alive["EnclaveID"]]
    assert result.stderr.startswith("Failed connections: 1\n[ E39 ] Enclave process connection failure.")
    assert not sim_state.run_dir(dead["EnclaveID"].rsplit("-enc", 1)[1]).exists()
    assert not sim_state.vsock_link(dead["EnclaveCID"]).is_symlink()
    assert sim("describe-enclaves").code == 0


def test_describe_metadata_adds_image_fields(sim, make_eif):
    _run(sim, make_eif("nginx.eif"))
    described = json.loads(sim("describe-enclaves", "--metadata").stdout)[0]
    assert list(described)[-3:] == ["ImageName", "ImageVersion", "Metadata"]
    assert described["ImageName"] == "nginx" and described["Metadata"]["BuildTool"] == "nitro-cli"


ROLE = "arn:aws:iam::123456789012:instance-profile/k3sdaas-master"


@pytest.mark.parametrize("debug", [False, True])
def test_enclave_nsm_attests_its_measurements(sim, sim_state, make_eif, monkeypatch, debug):
    monkeypatch.setenv("K3SDAAS_NITRO_SIM_IAM_ROLE", ROLE)
    eif = make_eif("nginx.eif")
    info, _ = _run(sim, eif, *(["--debug-mode"] if debug else []))
    slot = info["EnclaveID"].rsplit("-enc", 1)[1]
    assert sim_state.vsock_link(info["EnclaveCID"]).resolve() == (sim_state.run_dir(slot) / "vsock").resolve()
    client = NsmClient(SocketTransport(str(sim_state.run_dir(slot) / "nsm.sock")))
    assert client.describe_nsm().module_id == info["EnclaveID"]
    document = client.attestation(nonce=b"challenge", public_key=b"enclave-key")
    root = load_root(sim_state.root / "pki" / "root.pem")
    measured = read_eif(eif).measurements
    policy = PcrPolicy.for_image(
        measured.pcr0,
        measured.pcr1,
        measured.pcr2,
        pcr3=measure_string(ROLE),
        pcr4=measure_string(GOLDEN_INSTANCE),
        allow_debug=debug,
    )
    if debug:
        pcrs = verify_attestation(document, root=root, policy=PcrPolicy(allow_debug=True)).document.pcrs
        assert [pcrs[i] for i in (0, 1, 2, 8)] == [ZERO_PCR] * 4
    else:
        result = verify_attestation(document, root=root, policy=policy, nonce=b"challenge", public_key=b"enclave-key")
        assert result.document.module_id == info["EnclaveID"]
        assert result.document.time <= datetime.now(UTC)


def test_command_line_entry_runs_as_a_separate_process(sim_state, make_eif):
    env = dict(os.environ)
    command = [sys.executable, "-m", "k3sdaas_localnet.nitro.cli"]
    version = subprocess.run([*command, "--version"], capture_output=True, text=True, env=env, check=False)
    assert (version.returncode, version.stdout) == (0, "Nitro CLI 1.4.2\n")
    described = subprocess.run(
        [*command, "describe-eif", "--eif-path", str(make_eif())], capture_output=True, text=True, env=env, check=False
    )
    assert described.returncode == 0 and json.loads(described.stdout)["CheckCRC"] is True
    usage = subprocess.run([*command, "run-enclave", "--bogus"], capture_output=True, text=True, env=env, check=False)
    assert usage.returncode == 2 and "USAGE:\n    nitro-cli" in usage.stderr  # clap's layout


def test_boot_failure_is_e36_then_e39(sim, sim_state, make_eif, monkeypatch, tmp_path):
    """With the Docker runtime but no docker CLI, the enclave cannot boot: nothing is left running."""
    monkeypatch.setenv("K3SDAAS_NITRO_SIM_RUNTIME", "docker")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    result = sim("run-enclave", "--eif-path", str(make_eif()), "--memory", "64", "--cpu-count", "1")
    assert result.code == 39 and result.stdout == ""
    blocks = [line for line in result.stderr.splitlines() if line.startswith("[ E")]
    assert [block[:7] for block in blocks] == ["[ E36 ]", "[ E39 ]"]
    assert sim_state.records() == [] and sim("describe-enclaves").stdout == "[]\n"
