"""Role nautilus_master refuses a bad nautilus_master_audit_interval before it builds or changes anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.playbook import run_playbook

VALID = {"nautilus_master_package_id": "0x1", "nautilus_master_public_url": "https://master:6443",
         "nautilus_master_api_url": "https://master:6443"}


@pytest.mark.parametrize("value", [0, -1, 3601, 10**20, "ten", ""])
def test_a_bad_audit_interval_is_refused_naming_it(tmp_path: Path, value: object) -> None:
    playbook = tmp_path / "master.yml"
    playbook.write_text("- hosts: localhost\n  gather_facts: false\n  roles:\n    - k3sdaas.core.nautilus_master\n")
    run = run_playbook(playbook, local=True, extra_vars={**VALID, "nautilus_master_audit_interval": value})
    failure = run.first_failure()
    assert failure is not None and "nautilus_master_audit_interval" in failure["msg"], run.output[-2000:]
    assert run.stats["localhost"]["changed"] == 0
