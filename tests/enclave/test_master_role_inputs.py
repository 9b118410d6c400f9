"""Role nautilus_master refuses bad settings (audit interval, tier RBAC) before it builds or changes anything."""

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


@pytest.mark.parametrize(
    ("variable", "value"),
    [("nautilus_master_rbac_interval", 0), ("nautilus_master_rbac_interval", 3601),
     ("nautilus_master_rbac_interval", "soon"), ("nautilus_master_developer_namespace_label", "no-equals"),
     ("nautilus_master_developer_namespace_label", "a=b c"), ("nautilus_master_developer_namespaces", ["Team_E"]),
     ("nautilus_master_developer_namespaces", ["ok", "-bad"])],
)
def test_bad_tier_rbac_settings_are_refused_naming_them(tmp_path: Path, variable: str, value: object) -> None:
    playbook = tmp_path / "master.yml"
    playbook.write_text("- hosts: localhost\n  gather_facts: false\n  roles:\n    - k3sdaas.core.nautilus_master\n")
    run = run_playbook(playbook, local=True, extra_vars={**VALID, variable: value})
    failure = run.first_failure()
    assert failure is not None and variable in failure["msg"], run.output[-2000:]
    assert run.stats["localhost"]["changed"] == 0
