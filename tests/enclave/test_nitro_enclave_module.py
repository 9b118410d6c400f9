"""k3sdaas.core.nitro_enclave through ansible-playbook, with the nitro-cli simulator and tiny images."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from k3sdaas.nitro.eif import read_eif

pytestmark = pytest.mark.docker
PCR = re.compile(r"[0-9a-f]{96}")


def containers(enclave_id: str) -> list[str]:
    """The simulator runs each enclave as a container labelled with its enclave ID."""
    out = subprocess.run(["docker", "ps", "-q", "--filter", f"label=k3sdaas.nitro.enclave-id={enclave_id}"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def test_build_run_idempotent_replace_and_terminate(steps, sim, tiny_image, tmp_path: Path) -> None:
    image = tiny_image("v1")
    eif = tmp_path / "app.eif"
    run = {"state": "running", "docker_uri": image, "memory_mib": 256}
    built, again, running, steady = steps({"state": "built", "docker_uri": image},
                                          {"state": "built", "docker_uri": image}, run, run)

    assert built.changed and built.result["actions"] == ["build"], built.output
    assert built.result["build_reason"] == "no EIF at eif_path"
    assert again.result["pcrs"] == {name: value for name, value in
                                    read_eif(eif).measurements.as_nitro_cli().items() if name != "HashAlgorithm"}
    assert not again.changed and again.result["actions"] == [] and again.result["build_reason"] == ""

    assert running.changed and running.result["actions"] == ["run"], running.output
    enclave = running.result["enclave"]
    assert enclave["enclave_name"] == "app" and enclave["state"] == "RUNNING"
    assert enclave["enclave_cid"] >= 4 and enclave["cpu_count"] == 2 and enclave["memory_mib"] >= 256
    assert enclave["pcrs"]["PCR0"] == running.result["pcrs"]["PCR0"] == built.result["pcrs"]["PCR0"]
    assert PCR.fullmatch(enclave["pcrs"]["PCR2"])
    assert running.result["diff"]["before"] == {} and running.result["diff"]["after"]["enclave_id"]

    assert not steady.changed and steady.result["actions"] == [] and steady.result["drift"] == []
    assert steady.result["enclave"]["enclave_id"] == enclave["enclave_id"]
    assert [item["EnclaveID"] for item in sim.describe()] == [enclave["enclave_id"]]
    assert containers(enclave["enclave_id"])

    tiny_image("v2")  # same tag, new filesystem: a new image ID
    replaced, absent, gone = steps(run, {"state": "absent"}, {"state": "absent"})

    assert replaced.changed and replaced.result["actions"] == ["build", "terminate", "run"], replaced.output
    assert replaced.result["build_reason"].startswith("image changed from sha256:")
    assert replaced.result["drift"] == ["PCR0", "PCR2"]  # the image and the application; PCR1 is the boot blobs
    new = replaced.result["enclave"]
    assert new["pcrs"]["PCR0"] != enclave["pcrs"]["PCR0"] and new["enclave_id"] != enclave["enclave_id"]
    assert new["pcrs"]["PCR1"] == enclave["pcrs"]["PCR1"]  # the boot blobs did not change
    assert replaced.result["diff"]["before"]["pcrs"]["PCR0"] == enclave["pcrs"]["PCR0"]
    assert replaced.result["diff"]["after"]["enclave_id"] == new["enclave_id"]
    assert containers(enclave["enclave_id"]) == []

    assert absent.changed and absent.result["actions"] == ["terminate", "remove"], absent.output
    assert absent.result["enclave"]["enclave_id"] == new["enclave_id"]
    assert not gone.changed and gone.result["actions"] == []
    assert sim.describe() == [] and not eif.exists() and not Path(f"{eif}.json").exists()
    assert containers(new["enclave_id"]) == []


def test_check_mode_predicts_without_acting(steps, sim, tiny_image, tmp_path: Path) -> None:
    image = tiny_image("check")
    eif = tmp_path / "app.eif"
    run = {"state": "running", "docker_uri": image, "memory_mib": 256}
    would_build, would_run = steps({"state": "built", "docker_uri": image, "check": True}, dict(run, check=True))

    assert would_build.changed and would_build.result["actions"] == ["build"], would_build.output
    assert would_run.changed and would_run.result["actions"] == ["build", "run"], would_run.output
    assert would_run.result["diff"]["before"] == {} and would_run.result["diff"]["after"]["enclave_id"] is None
    assert not eif.exists() and sim.describe() == []

    running, would_grow, would_debug, would_remove = steps(
        run, dict(run, memory_mib=512, check=True), dict(run, debug_mode=True, check=True),
        {"state": "absent", "check": True})
    assert running.changed
    assert would_debug.result["drift"] == ["debug_mode"]
    assert "debug_mode is true" in would_debug.output and "all-zero PCR0" in would_debug.output
    assert would_grow.changed and would_grow.result["actions"] == ["terminate", "run"], would_grow.output
    assert would_grow.result["drift"] == ["memory_mib"]
    assert would_remove.changed and would_remove.result["actions"] == ["terminate", "remove"]
    assert [item["EnclaveID"] for item in sim.describe()] == [running.result["enclave"]["enclave_id"]]
    assert eif.exists()


def test_bad_input_names_the_field_and_changes_nothing(steps, sim, tiny_image, tmp_path: Path) -> None:
    image = tiny_image("bad")
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"memory_mib": 4096}, "memory_mib", "exceeds the 1024 MiB the allocator has free"),
        ({"cpu_count": 4}, "cpu_count", "exceeds the 2 CPUs the allocator has free"),
        ({"memory_mib": 32}, "memory_mib", "memory_mib must be at least 64"),
        ({"docker_uri": "k3sdaas-test/no-such-image:0"}, "docker_uri", "is not a local image"),
    ]
    results = steps(*[{"state": "running", "docker_uri": image, "memory_mib": 256, **options}
                      for options, _field, _message in cases])
    for failed, (_options, field, message) in zip(results, cases, strict=True):
        assert failed.failed and failed.result["field"] == field, failed.output
        assert message in failed.result["msg"] and not failed.changed
    assert not (tmp_path / "app.eif").exists() and sim.describe() == []
