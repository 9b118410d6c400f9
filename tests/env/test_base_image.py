"""The systemd base image that scripts/setup.sh builds from images/base boots systemd unprivileged."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the fixture's class; pytest's importlib mode cannot import conftest at run time
    from conftest import EnvTools

pytestmark = pytest.mark.docker

# The container recipe of role local_hosts and molecule/default (--privileged is refused here).
SYSTEMD_FLAGS = [
    *("--cap-add", "SYS_ADMIN"),
    *("--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp"),
    *("-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--cgroupns=host"),
]


def test_latest_is_the_image_of_the_current_recipe(env_tools: EnvTools, docker_engine: None) -> None:
    recipe_hash = env_tools.bash_lib("content_hash images/base/*").strip()
    current = env_tools.inspect("image", f"k3sdaas-base:{recipe_hash}")
    assert current is not None, f"k3sdaas-base:{recipe_hash} missing: images/base changed, run scripts/setup.sh"
    latest = env_tools.inspect("image", "k3sdaas-base:latest")
    assert latest is not None and latest["Id"] == current["Id"]
    assert latest["Config"]["StopSignal"] == "SIGRTMIN+3"


@pytest.fixture
def booted_container(env_tools: EnvTools, docker_engine: None) -> Iterator[str]:
    name = f"k3sdaas-envtest-{uuid.uuid4().hex[:8]}"
    env_tools.run(["docker", "run", "-d", "--name", name, *SYSTEMD_FLAGS, "k3sdaas-base:latest"])
    try:
        yield name
    finally:
        env_tools.run(["docker", "rm", "-f", name], check=False)


def test_container_boots_systemd_to_running(env_tools: EnvTools, booted_container: str) -> None:
    state = env_tools.wait_for_systemd(booted_container)
    assert state == "running", env_tools.run(
        ["docker", "exec", booted_container, "systemctl", "--failed", "--no-pager"], check=False
    ).stdout
    pid1 = env_tools.run(["docker", "exec", booted_container, "cat", "/proc/1/comm"]).stdout.strip()
    assert pid1 == "systemd"


def test_image_has_what_ansible_and_testinfra_use(env_tools: EnvTools, booted_container: str) -> None:
    env_tools.wait_for_systemd(booted_container)
    for tool in ("/usr/bin/python3", "/usr/bin/sudo", "/usr/sbin/runuser", "/usr/bin/ps", "/usr/sbin/ip"):
        env_tools.run(["docker", "exec", booted_container, "test", "-x", tool])
    env_tools.run(["docker", "exec", booted_container, "python3", "-c", "import apt"])
