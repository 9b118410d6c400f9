"""k3s_server's templates render the control plane as the enclave runs it, and the role refuses bad variables.

The templates are rendered by ansible-playbook with the role's defaults and vars, as the role renders
them; nothing is installed (there is no K3s binary on this machine).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers.playbook import run_playbook

from .conftest import REPO, ROLES

pytestmark = pytest.mark.slow
ROLE = ROLES / "k3s_server"
RENDER = f"""\
- name: Render the k3s_server templates
  hosts: localhost
  gather_facts: false
  vars_files:
    - {ROLE}/defaults/main.yml
    - {ROLE}/vars/main.yml
  tasks:
    - name: Render
      ansible.builtin.template:
        src: {ROLE}/templates/{{{{ item }}}}.j2
        dest: "{{{{ out }}}}/{{{{ item }}}}"
        mode: "0600"
      loop: [config.yaml, k3s.service, k3s.service.env]
"""
ENCLAVE = {
    "disable-agent": True,
    "https-listen-port": 6444,
    "flannel-backend": "none",
    "disable-network-policy": True,
    "disable-kube-proxy": True,
    "disable-cloud-controller": True,
    "disable": ["traefik", "servicelb", "local-storage", "metrics-server"],
    "write-kubeconfig-mode": "0600",
}


def render(tmp_path: Path, **variables: Any) -> Path:
    playbook = tmp_path / "render.yml"
    playbook.write_text(RENDER)
    out = tmp_path / "out"
    out.mkdir()
    run = run_playbook(playbook, local=True, extra_vars={"out": str(out), **variables})
    assert run.returncode == 0, run.output
    return out


def test_default_config_is_the_enclaves_control_plane(tmp_path: Path) -> None:
    out = render(tmp_path)
    assert yaml.safe_load((out / "config.yaml").read_text()) == ENCLAVE
    assert (out / "k3s.service.env").read_text() == ""  # K3s generates the token


def test_addresses_token_and_extra_config(tmp_path: Path) -> None:
    out = render(tmp_path, k3s_server_bind_address="127.0.0.1", k3s_server_advertise_address="127.0.0.1",
                 k3s_server_tls_san=["master.example"], k3s_server_token="s3cret",
                 k3s_server_extra_config={"disable-agent": False, "kube-apiserver-arg": ["audit-log-maxage=7"]})
    assert yaml.safe_load((out / "config.yaml").read_text()) == {
        **ENCLAVE, "bind-address": "127.0.0.1", "advertise-address": "127.0.0.1", "tls-san": ["master.example"],
        "kube-apiserver-arg": ["audit-log-maxage=7"]}  # the role's own keys win over extra_config
    assert (out / "k3s.service.env").read_text() == "K3S_TOKEN=s3cret\n"
    assert "s3cret" not in (out / "config.yaml").read_text()


def test_unit_is_the_install_scripts_server_unit(tmp_path: Path) -> None:
    unit = (render(tmp_path) / "k3s.service").read_text()
    agent = (REPO / "tests/fixtures/k3s/k3s-agent.service").read_text()
    assert unit == agent.replace("k3s-agent.service.env", "k3s.service.env").replace("    agent \\", "    server \\")
    assert "Type=notify" in unit and unit.endswith("ExecStart=/usr/local/bin/k3s \\\n    server \\\n\n")


PLAY = """\
- name: Apply k3s_server
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Apply the role
      ansible.builtin.include_role:
        name: k3sdaas.core.k3s_server
"""


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"k3s_server_https_listen_port": 6443}, "other than 6443, the master service's (got 6443)"),
        ({"k3s_server_https_listen_port": 70000}, "k3s_server_https_listen_port must be a port from 1 to 65535"),
        ({"k3s_simulated": True}, "there is no simulated K3s server"),
    ],
)
def test_bad_variables_fail_before_the_host_is_touched(tmp_path: Path, variables: dict[str, Any], message: str) -> None:
    playbook = tmp_path / "apply.yml"
    playbook.write_text(PLAY)
    run = run_playbook(playbook, local=True, check=True, extra_vars=variables)
    failure = run.first_failure()
    assert failure is not None and message in failure["msg"], run.output
