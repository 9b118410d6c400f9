# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether an EC2 instance type can be the parent of a Nitro Enclave.

Input is one entry of the EC2 ``DescribeInstanceTypes`` answer (boto3's CamelCase shape). Pure
logic, no AWS call, so the launch module and any info module share one rule.

The rule:

* When the API states ``NitroEnclavesSupport`` (EC2 has for years, moto does), its value decides,
  and the vCPU floor below is still applied so a wrong catalogue cannot pass a too-small type.
* When the field is absent (an older endpoint or an emulator), support is inferred: the type must
  run on the Nitro hypervisor and meet the vCPU floor. The answer then says it was inferred.
* vCPU floor (AWS Nitro Enclaves user guide): 4 on x86_64, 2 on arm64 (Graviton). A parent must
  keep at least one full core for itself, which is why 2-vCPU x86 types (one core, SMT) are out.
"""

from __future__ import annotations

import dataclasses
from typing import Any

MIN_VCPUS_BY_ARCHITECTURE = {"x86_64": 4, "arm64": 2}


@dataclasses.dataclass(frozen=True)
class EnclaveSupport:
    """The verdict for one instance type: ``supported`` plus a sentence saying why."""

    instance_type: str
    supported: bool
    reason: str
    inferred: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def enclave_support(instance_type_info: dict[str, Any]) -> EnclaveSupport:
    """Judge one DescribeInstanceTypes entry; see the module docstring for the rule."""
    name = instance_type_info.get("InstanceType", "?")
    vcpus = instance_type_info.get("VCpuInfo", {}).get("DefaultVCpus", 0)
    architectures = instance_type_info.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
    floors = [MIN_VCPUS_BY_ARCHITECTURE[arch] for arch in architectures if arch in MIN_VCPUS_BY_ARCHITECTURE]
    if not floors:
        return EnclaveSupport(
            name,
            False,
            f"architecture {'/'.join(architectures) or 'unknown'} cannot host Nitro Enclaves (x86_64 or arm64 only)",
        )
    floor = min(floors)
    if vcpus < floor:
        return EnclaveSupport(
            name,
            False,
            f"{name} has {vcpus} vCPUs; a Nitro Enclaves parent on {'/'.join(architectures)} needs at least {floor}",
        )

    stated = instance_type_info.get("NitroEnclavesSupport")
    if stated is not None:
        if stated == "supported":
            return EnclaveSupport(name, True, f"{name}: NitroEnclavesSupport=supported, {vcpus} vCPUs")
        return EnclaveSupport(name, False, f"{name} does not support Nitro Enclaves (NitroEnclavesSupport={stated})")

    hypervisor = instance_type_info.get("Hypervisor")
    if hypervisor != "nitro":
        return EnclaveSupport(
            name,
            False,
            f"{name} is not a Nitro instance (hypervisor {hypervisor or 'unknown'})",
            inferred=True,
        )
    return EnclaveSupport(
        name,
        True,
        f"{name}: NitroEnclavesSupport not reported; inferred from Nitro hypervisor and {vcpus} vCPUs",
        inferred=True,
    )
