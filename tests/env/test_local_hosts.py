"""Role k3sdaas.core.local_hosts: create, keep and remove systemd containers; reject bad input."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from helpers.playbook import run_playbook

if TYPE_CHECKING:  # the fixture's class; pytest's importlib mode cannot import conftest at run time
    from conftest import EnvTools

PLAY = """
- name: Apply local_hosts
  hosts: localhost
  gather_facts: false
  roles:
    - role: k3sdaas.core.local_hosts
"""


@pytest.fixture
def play(tmp_path: Path) -> Path:
    path = tmp_path / "local_hosts.yml"
    path.write_text(PLAY)
    return path


@pytest.fixture
def scratch_hosts(env_tools: EnvTools, docker_engine: None, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Variables for a one-host environment of its own; removed afterwards whatever the test did."""
    suffix = uuid.uuid4().hex[:8]
    variables = {"local_hosts_hosts": [f"k3sdaas-envtest-{suffix}"], "local_hosts_network": f"k3sdaas-envtest-{suffix}"}
    yield variables
    leftovers = env_tools.run(["docker", "ps", "-aq", "--filter", f"name=k3sdaas-envtest-{suffix}"]).stdout.split()
    if leftovers:
        env_tools.run(["docker", "rm", "-f", *leftovers], check=False)
    env_tools.run(["docker", "network", "rm", variables["local_hosts_network"]], check=False)


def extra_vars(tmp_path: Path, variables: dict[str, Any]) -> str:
    path = tmp_path / f"vars-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(variables))
    return f"@{path}"


@pytest.mark.docker
def test_present_starts_unprivileged_systemd_hosts_and_absent_removes_them(
    env_tools: EnvTools, play: Path, scratch_hosts: dict[str, Any], tmp_path: Path
) -> None:
    (host,) = scratch_hosts["local_hosts_hosts"]
    network = scratch_hosts["local_hosts_network"]

    # Idempotence of "present" is covered by the second deploy-all run in test_deploy_all.py.
    created = env_tools.run_playbook(play, "-e", extra_vars(tmp_path, scratch_hosts))
    assert created["localhost"]["changed"] == 2  # the network and the container

    container = env_tools.inspect("container", host)
    assert container is not None and container["State"]["Running"]
    host_config = container["HostConfig"]
    assert host_config["Privileged"] is False
    # Engines newer than Debian's report capabilities with the CAP_ prefix.
    assert {cap.removeprefix("CAP_") for cap in host_config["CapAdd"]} == {"SYS_ADMIN"}
    assert host_config["CgroupnsMode"] == "host"
    assert set(host_config["Tmpfs"]) == {"/run", "/run/lock", "/tmp"}
    assert list(container["NetworkSettings"]["Networks"]) == [network]
    booted = env_tools.run(["docker", "exec", host, "systemctl", "is-system-running"], check=False)
    assert booted.stdout.strip() == "running"

    # Enclave containers as the nitro-cli simulator labels them (tests/nitro/test_docker.py checks the label):
    # the host's own goes with it, another deployment's on the same engine stays.
    enclaves = {parent: f"{host}-enclave-of-{parent}" for parent in (host, f"{host}-other")}
    for parent, name in enclaves.items():
        env_tools.run(["docker", "create", "--name", name, "--label", f"k3sdaas.nitro.parent={parent}",
                       "--label", "k3sdaas.nitro.enclave-id=i-0-enc1", "k3sdaas-base:latest"])

    absent_vars = extra_vars(tmp_path, {**scratch_hosts, "local_hosts_state": "absent"})
    previewed = env_tools.run_playbook(play, "--check", "-e", absent_vars)
    assert previewed["localhost"]["changed"] == 2  # the host and its enclave
    assert env_tools.inspect("container", host) is not None  # check mode only reports the removal
    assert env_tools.inspect("container", enclaves[host]) is not None

    removed = env_tools.run_playbook(play, "-e", absent_vars)
    assert removed["localhost"]["changed"] == 2
    assert env_tools.inspect("container", host) is None
    assert env_tools.inspect("container", enclaves[host]) is None
    assert env_tools.inspect("container", enclaves[f"{host}-other"]) is not None
    env_tools.run(["docker", "rm", enclaves[f"{host}-other"]])
    # The network stays: scripts/setup.sh owns the hosts' network and binds its relays to its gateway.
    assert env_tools.inspect("network", network) is not None
    env_tools.run(["docker", "network", "rm", network])


@pytest.mark.docker
def test_enclaves_of_an_earlier_container_of_a_host_are_removed(
    env_tools: EnvTools, play: Path, scratch_hosts: dict[str, Any], tmp_path: Path
) -> None:
    # An enclave dies with its parent: one left by an earlier container of this name (a recreated master) goes;
    # the current container's own and another host's stay.
    (host,) = scratch_hosts["local_hosts_hosts"]
    variables = extra_vars(tmp_path, scratch_hosts)

    def enclave(name: str, parent: str) -> str:
        env_tools.run(["docker", "create", "--name", name, "--label", f"k3sdaas.nitro.parent={parent}",
                       "--label", "k3sdaas.nitro.enclave-id=i-0-enc1", "k3sdaas-base:latest"])
        return name

    earlier = enclave(f"{host}-enclave-earlier", host)
    elsewhere = enclave(f"{host}-enclave-of-another-host", f"{host}-other")
    time.sleep(1.1)  # Docker lists creation times in seconds
    try:
        created = env_tools.run_playbook(play, "-e", variables)
        assert created["localhost"]["changed"] == 3  # the network, the host, the earlier enclave
        assert env_tools.inspect("container", earlier) is None
        time.sleep(1.1)
        current = enclave(f"{host}-enclave-current", host)
        again = env_tools.run_playbook(play, "-e", variables)
        assert again["localhost"]["changed"] == 0
        assert env_tools.inspect("container", current) is not None
        assert env_tools.inspect("container", elsewhere) is not None
    finally:
        env_tools.run(["docker", "rm", "-f", elsewhere], check=False)


@pytest.mark.docker
def test_a_host_that_sees_a_removed_copy_of_its_mount_is_restarted(
    env_tools: EnvTools, play: Path, scratch_hosts: dict[str, Any], tmp_path: Path
) -> None:
    # A new clone at the same path while the hosts run: the master would keep writing into the removed state.
    (host,) = scratch_hosts["local_hosts_hosts"]
    shared = tmp_path / "state"
    shared.mkdir()
    variables = extra_vars(tmp_path, {**scratch_hosts, "local_hosts_host_options": {
        host: {"volumes": [f"{shared}:/mnt/state", "/usr/bin/docker:/usr/local/bin/docker:ro"]}}})
    env_tools.run_playbook(play, "-e", variables)
    started = env_tools.inspect("container", host)["State"]["StartedAt"]

    again = env_tools.run_playbook(play, "-e", variables)
    assert again["localhost"]["changed"] == 0
    assert env_tools.inspect("container", host)["State"]["StartedAt"] == started

    shared.rename(tmp_path / "removed")
    shared.mkdir()
    (shared / "current").write_text("made after the host started\n")
    previewed = env_tools.run_playbook(play, "--check", "-e", variables)
    assert previewed["localhost"]["changed"] == 1
    assert env_tools.inspect("container", host)["State"]["StartedAt"] == started
    restarted = env_tools.run_playbook(play, "-e", variables)
    assert restarted["localhost"]["changed"] == 1
    assert env_tools.inspect("container", host)["State"]["StartedAt"] != started
    seen = env_tools.run(["docker", "exec", host, "cat", "/mnt/state/current"], check=False)
    assert seen.stdout == "made after the host started\n"
    assert env_tools.run_playbook(play, "-e", variables)["localhost"]["changed"] == 0


@pytest.mark.parametrize(
    ("variables", "field"),
    [({"local_hosts_state": "running"}, "local_hosts_state"), ({"local_hosts_hosts": "one-name"}, "local_hosts_hosts")],
)
def test_bad_input_fails_naming_the_field(
    env_tools: EnvTools, play: Path, tmp_path: Path, variables: dict[str, Any], field: str
) -> None:
    result = run_playbook(play, "-e", extra_vars(tmp_path, variables), check=True, json_report=False)
    assert result.returncode != 0
    assert field in result.stdout
