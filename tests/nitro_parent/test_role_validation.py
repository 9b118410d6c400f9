"""Role k3sdaas.core.nitro_parent refuses bad variables before it touches the host, naming the variable.

Each case runs the role against localhost in check mode (a second guard: validation fails first, so
nothing would be changed even outside check mode). Converging the role for real is molecule's job
(molecule/nitro_parent).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helpers.playbook import PlaybookRun, run_playbook

PLAY = """\
- name: Validate nitro_parent variables
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Apply the role
      ansible.builtin.include_role:
        name: k3sdaas.core.nitro_parent
"""
pytestmark = pytest.mark.slow

SIMULATED = {"nitro_parent_simulated": True, "nitro_parent_vsock_proxy_remote_host": "kms.us-east-1.amazonaws.com"}


def run_role(tmp_path: Path, variables: dict[str, Any]) -> PlaybookRun:
    playbook = tmp_path / "validate.yml"
    playbook.write_text(PLAY)
    return run_playbook(playbook, extra_vars=variables, check=True, json_report=False, timeout=120)


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({**SIMULATED, "nitro_parent_memory_mib": 32}, "nitro_parent_memory_mib must be at least 64"),
        ({**SIMULATED, "nitro_parent_memory_mib": "lots"}, "nitro_parent_memory_mib"),
        ({**SIMULATED, "nitro_parent_cpu_pool": "2-"}, "nitro_parent_cpu_pool"),
        ({**SIMULATED, "nitro_parent_cpu_count": 0}, "nitro_parent_cpu_count at least 1"),
        (
            {
                **SIMULATED,
                "nitro_parent_vsock_proxy_allowlist": [{"address": "kms.us-east-1.amazonaws.com", "port": 70000}],
            },
            "nitro_parent_vsock_proxy_allowlist: entry",
        ),
        ({"nitro_parent_simulated": True}, "nitro_parent_vsock_proxy_remote_host: ''"),
        (
            {**SIMULATED, "nitro_parent_vsock_proxy_remote_host": "evil.example.com"},
            "nitro_parent_vsock_proxy_remote_host: 'evil.example.com'",
        ),
        ({"nitro_parent_simulated": False}, "nitro_parent_simulated: false needs Amazon Linux 2023"),
    ],
)
def test_bad_variables_are_refused_by_name(tmp_path: Path, variables: dict[str, Any], named: str) -> None:
    completed = run_role(tmp_path, variables)
    assert completed.returncode == 2, completed.stdout
    assert named in completed.stdout, completed.stdout
