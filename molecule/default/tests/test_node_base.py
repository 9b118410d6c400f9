"""What role k3sdaas.core.node_base leaves on each molecule host (testinfra, run by `molecule verify`)."""

import pytest
import yaml
from testinfra.host import Host

SERVICE_USER = "k3sdaas"


def expected_role(host: Host) -> str:
    """The role the node should record, from the host's molecule inventory groups."""
    return "master" if "k3sdaas_master" in host.ansible.get_variables()["group_names"] else "worker"


def test_service_user_is_a_system_account_without_login(host: Host) -> None:
    user = host.user(SERVICE_USER)
    assert user.exists
    assert user.group == SERVICE_USER
    assert user.uid < 1000
    assert user.shell == "/usr/sbin/nologin"
    assert user.home == "/var/lib/k3sdaas"
    assert host.group(SERVICE_USER).gid < 1000


@pytest.mark.parametrize(
    ("path", "owner"),
    [("/etc/k3sdaas", "root"), ("/var/lib/k3sdaas", SERVICE_USER)],
)
def test_directories_are_private_to_the_service_group(host: Host, path: str, owner: str) -> None:
    directory = host.file(path)
    assert directory.is_directory
    assert directory.user == owner
    assert directory.group == SERVICE_USER
    assert directory.mode == 0o750


def test_node_identity_file_names_this_node_and_its_role(host: Host) -> None:
    identity = host.file("/etc/k3sdaas/node.yml")
    assert identity.is_file
    assert (identity.user, identity.group, identity.mode) == ("root", SERVICE_USER, 0o640)
    assert yaml.safe_load(identity.content_string) == {
        "node_id": host.backend.get_hostname(),
        "role": expected_role(host),
    }


def test_service_user_can_read_the_identity_but_not_write_it(host: Host) -> None:
    as_service = f"runuser -u {SERVICE_USER} --"
    assert host.run(f"{as_service} cat /etc/k3sdaas/node.yml").rc == 0
    assert host.run(f"{as_service} touch /etc/k3sdaas/node.yml").rc != 0
    assert host.run(f"{as_service} touch /var/lib/k3sdaas/.probe && rm /var/lib/k3sdaas/.probe").rc == 0
