"""What role k3sdaas.core.nitro_parent leaves on a simulated parent (testinfra, run by `molecule verify`).

Configuration files and unit files are compared byte for byte with the packaged originals copied
into tests/fixtures/nitro_parent (aws-nitro-enclaves-cli v1.5.0).
"""

import json
import os
from pathlib import Path

import pytest
from testinfra.host import Host

GOLDEN = (
    Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
    / "tests/fixtures/nitro_parent"
)
SERVICES = ["nitro-enclaves-allocator.service", "nitro-enclaves-vsock-proxy.service"]


@pytest.mark.parametrize(
    ("path", "golden"),
    [
        ("/etc/nitro_enclaves/allocator.yaml", "allocator.yaml"),
        ("/etc/nitro_enclaves/vsock-proxy.yaml", "vsock-proxy.yaml.head"),
        ("/usr/lib/systemd/system/nitro-enclaves-allocator.service", "nitro-enclaves-allocator.service"),
        ("/usr/lib/systemd/system/nitro-enclaves-vsock-proxy.service", "nitro-enclaves-vsock-proxy.service"),
    ],
)
def test_files_match_the_packaged_format(host: Host, path: str, golden: str) -> None:
    written = host.file(path)
    assert (written.user, written.group, written.mode) == ("root", "root", 0o644)
    assert written.content == (GOLDEN / golden).read_bytes()


def test_operator_is_in_group_ne(host: Host) -> None:
    assert host.group("ne").exists
    assert "ne" in host.user("enclave-operator").groups


@pytest.mark.parametrize("path", ["/run/nitro_enclaves", "/var/log/nitro_enclaves"])
def test_runtime_directories_belong_to_group_ne(host: Host, path: str) -> None:
    directory = host.file(path)
    assert directory.is_directory
    assert (directory.user, directory.group, directory.mode) == ("root", "ne", 0o775)


@pytest.mark.parametrize("service", SERVICES)
def test_services_are_enabled_and_active(host: Host, service: str) -> None:
    unit = host.service(service)
    assert unit.is_enabled
    assert unit.is_running


def test_unit_files_pass_systemd_verification(host: Host) -> None:
    result = host.run("systemd-analyze verify " + " ".join(SERVICES))
    assert result.rc == 0, result.stderr


def test_allocator_reserved_the_configured_resources(host: Host) -> None:
    record = json.loads(host.file("/run/nitro_enclaves/simulated-allocation.json").content_string)
    assert record == {"memory_mib": 512, "cpu_count": 2, "simulated": True}


def test_vsock_proxy_serves_the_pinned_destination(host: Host) -> None:
    exec_start = host.check_output("systemctl show -p ExecStart --value nitro-enclaves-vsock-proxy.service")
    assert (
        "/usr/bin/vsock-proxy 8000 kms.us-east-1.amazonaws.com 443 --config /etc/nitro_enclaves/vsock-proxy.yaml"
        in exec_start
    )
    assert host.socket("tcp://127.0.0.1:8000").is_listening


def test_nitro_cli_is_the_simulator(host: Host) -> None:
    link = host.file("/usr/bin/nitro-cli")
    assert link.is_symlink
    assert link.linked_to == "/opt/nitro-sim/nitro-cli-sim"


def test_host_is_labelled_simulated(host: Host) -> None:
    assert "SIMULATED" in host.file("/etc/nitro_enclaves/SIMULATED").content_string
