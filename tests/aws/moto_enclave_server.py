"""moto's server (the `moto_server` command) plus the one EC2 field it does not model: EnclaveOptions.

moto 5.x accepts RunInstances' EnclaveOptions but drops it, and DescribeInstances never returns the
field. Real EC2 always returns it ({"Enabled": false} unless the instance was launched with
enclaves). This launcher keeps the request's value on the instance so the serializer emits it, then
hands over to moto's own command line. Everything else is stock moto.

Usage: python moto_enclave_server.py -H 127.0.0.1 -p PORT   (the same arguments as moto_server)
"""

from __future__ import annotations

import sys
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.models.instances import Instance
from moto.ec2.responses.instances import InstanceResponse
from moto.server import main as moto_server_main

_run_instances = InstanceResponse.run_instances


def _run_instances_keeping_enclave_options(self: Any) -> ActionResult:
    result = _run_instances(self)
    enabled = bool(self._get_param("EnclaveOptions", {}).get("Enabled", False))
    reservation: Any = result.result
    for instance in reservation.instances:
        instance.enclave_options = {"Enabled": enabled}
    return result


def install() -> None:
    """Model EnclaveOptions: instances default to disabled, RunInstances sets it from the request."""
    Instance.enclave_options = {"Enabled": False}  # type: ignore[attr-defined]
    InstanceResponse.run_instances = _run_instances_keeping_enclave_options  # type: ignore[method-assign]


if __name__ == "__main__":
    install()
    moto_server_main(sys.argv[1:])
