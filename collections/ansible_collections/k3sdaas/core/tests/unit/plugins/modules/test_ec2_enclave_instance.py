# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of ec2_enclave_instance: the instance-type rule, the launch request, tags, drift.

The EC2 path itself runs against a moto server in tests/aws at the repository root.
"""

from __future__ import annotations

import pytest
from ansible_collections.k3sdaas.core.plugins.module_utils.aws_enclave_support import enclave_support
from ansible_collections.k3sdaas.core.plugins.modules.ec2_enclave_instance import (
    desired_tags,
    identity_filters,
    launch_drift,
    launch_request,
    snake_instance,
)


def instance_type(name, vcpus, arch="x86_64", support="supported", hypervisor="nitro"):
    info = {
        "InstanceType": name,
        "VCpuInfo": {"DefaultVCpus": vcpus},
        "ProcessorInfo": {"SupportedArchitectures": [arch]},
        "Hypervisor": hypervisor,
    }
    if support is not None:
        info["NitroEnclavesSupport"] = support
    return info


PARAMS = {
    "name": "prod-master",
    "cluster": "prod",
    "node_role": "master",
    "image_id": "ami-1",
    "instance_type": "m5.xlarge",
    "subnet_id": None,
    "security_group_ids": None,
    "key_name": None,
    "iam_instance_profile": None,
    "user_data": None,
    "metadata_http_tokens": "required",
    "tags": None,
}


@pytest.mark.parametrize(
    ("info", "supported", "inferred"),
    [
        (instance_type("m5.xlarge", 4), True, False),
        (instance_type("c6g.large", 2, arch="arm64"), True, False),
        (instance_type("t3.xlarge", 4, support="unsupported"), False, False),
        (instance_type("m5.large", 2), False, False),
        (instance_type("c6g.medium", 1, arch="arm64"), False, False),
        (instance_type("m5.xlarge", 4, support=None), True, True),
        (instance_type("m4.xlarge", 4, support=None, hypervisor="xen"), False, True),
        (instance_type("mac1.metal", 12, arch="x86_64_mac"), False, False),
    ],
)
def test_enclave_support_rule(info, supported, inferred):
    verdict = enclave_support(info)
    assert verdict.supported is supported
    assert verdict.inferred is inferred
    assert verdict.instance_type == info["InstanceType"]


def test_vcpu_floor_applies_even_when_the_api_says_supported():
    verdict = enclave_support(instance_type("m5.large", 2, support="supported"))
    assert not verdict.supported
    assert "needs at least 4" in verdict.reason


def test_launch_request_enables_enclaves_and_tags_identity():
    request = launch_request(dict(PARAMS, tags={"Owner": "ops", "Name": "ignored"}), "token-1")
    assert request["EnclaveOptions"] == {"Enabled": True}
    assert request["ClientToken"] == "token-1"
    assert request["MinCount"] == request["MaxCount"] == 1
    assert "DryRun" not in request
    for spec in request["TagSpecifications"]:
        tags = {tag["Key"]: tag["Value"] for tag in spec["Tags"]}
        assert tags == {"Owner": "ops", "Name": "prod-master", "k3sdaas:cluster": "prod", "k3sdaas:role": "master"}
    assert sorted(spec["ResourceType"] for spec in request["TagSpecifications"]) == ["instance", "volume"]


def test_launch_request_optional_fields():
    minimal = launch_request(PARAMS, "t")
    assert not {"SubnetId", "SecurityGroupIds", "KeyName", "IamInstanceProfile", "UserData"} & set(minimal)
    by_arn = launch_request(dict(PARAMS, iam_instance_profile="arn:aws:iam::1:instance-profile/p"), "t", dry_run=True)
    assert by_arn["IamInstanceProfile"] == {"Arn": "arn:aws:iam::1:instance-profile/p"}
    assert by_arn["DryRun"] is True
    assert launch_request(dict(PARAMS, iam_instance_profile="p"), "t")["IamInstanceProfile"] == {"Name": "p"}


def test_desired_tags_leave_tags_alone_unless_given():
    assert desired_tags(PARAMS) is None
    merged = desired_tags(dict(PARAMS, tags={"k3sdaas:role": "worker", "Owner": "ops"}))
    assert merged == {"Owner": "ops", "Name": "prod-master", "k3sdaas:cluster": "prod", "k3sdaas:role": "master"}


def test_identity_filters_only_live_instances():
    filters = {f["Name"]: f["Values"] for f in identity_filters({"Name": "a", "k3sdaas:cluster": "b"})}
    assert filters == {
        "tag:Name": ["a"],
        "tag:k3sdaas:cluster": ["b"],
        "instance-state-name": ["pending", "running", "stopping", "stopped"],
    }


def test_launch_drift_names_the_option():
    instance = {"InstanceId": "i-1", "InstanceType": "m5.2xlarge", "ImageId": "ami-1"}
    (drift,) = launch_drift(instance, PARAMS)
    assert drift.startswith("instance_type: requested m5.xlarge, instance i-1 has m5.2xlarge")


def test_snake_instance_keeps_tag_keys():
    instance = {
        "InstanceId": "i-1",
        "EnclaveOptions": {"Enabled": True},
        "Tags": [{"Key": "k3sdaas:role", "Value": "master"}],
    }
    assert snake_instance(instance) == {
        "instance_id": "i-1",
        "enclave_options": {"enabled": True},
        "tags": {"k3sdaas:role": "master"},
    }
    assert snake_instance({}) == {}
