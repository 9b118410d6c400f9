"""k3sdaas.core.ec2_enclave_instance through ansible-playbook against a moto EC2 server on loopback.

The server is moto's own (conftest.py; moto_enclave_server.py teaches it one field: EnclaveOptions).
Each test uses its own parent name, so tests share one server without seeing each other's instances.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from helpers.playbook import REPO, run_playbook

PLAYBOOK = REPO / "tests" / "playbooks" / "aws_enclave_parent.yml"
CLUSTER = "moto"

pytestmark = pytest.mark.slow
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclasses.dataclass
class Outcome:
    """The module's result for the one task of the playbook."""

    changed: bool
    failed: bool
    result: dict[str, Any]


def run_module(endpoint: str, image_id: str, name: str, check: bool = False, **extra: Any) -> Outcome:
    extra_vars = {
        "aws_endpoint_url": endpoint,
        "parent_name": name,
        "parent_cluster": CLUSTER,
        "parent_image_id": image_id,
        **extra,
    }
    run = run_playbook(PLAYBOOK, extra_vars=extra_vars, check=check, env=CREDENTIALS, timeout=120)
    _task, result = next(run.results())
    return Outcome(changed=bool(result.get("changed")), failed=bool(result.get("failed")), result=result)


def live_instances(ec2: Any, name: str) -> list[dict[str, Any]]:
    reservations = ec2.describe_instances(
        Filters=[
            {"Name": "tag:Name", "Values": [name]},
            {"Name": "tag:k3sdaas:cluster", "Values": [CLUSTER]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        ]
    )["Reservations"]
    return [instance for reservation in reservations for instance in reservation["Instances"]]


def state_of(ec2: Any, instance_id: str) -> str:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


def test_lifecycle_is_idempotent_and_enables_enclaves(endpoint: str, ec2: Any, image_id: str) -> None:
    name = "lifecycle-master"

    planned = run_module(endpoint, image_id, name, check=True)
    assert planned.changed and not planned.failed, planned.result
    assert live_instances(ec2, name) == [], "check mode must not launch"

    launched = run_module(endpoint, image_id, name)
    assert launched.changed and not launched.failed, launched.result
    instance_id = launched.result["instance"]["instance_id"]
    assert launched.result["instance"]["enclave_options"] == {"enabled": True}
    assert launched.result["enclave_support"]["supported"] is True
    (described,) = live_instances(ec2, name)
    assert described["InstanceId"] == instance_id
    assert described["EnclaveOptions"]["Enabled"] is True
    assert described["InstanceType"] == "m5.xlarge"
    assert described["State"]["Name"] == "running"
    tags = {tag["Key"]: tag["Value"] for tag in described["Tags"]}
    assert tags == {"Name": name, "k3sdaas:cluster": CLUSTER, "k3sdaas:role": "master"}
    assert described["MetadataOptions"]["HttpTokens"] == "required"
    (root,) = described["BlockDeviceMappings"]
    (volume,) = ec2.describe_volumes(VolumeIds=[root["Ebs"]["VolumeId"]])["Volumes"]
    assert volume["Encrypted"] is True, "the root volume is encrypted by default"

    again = run_module(endpoint, image_id, name)
    assert not again.changed and not again.failed, again.result
    assert again.result["instance"]["instance_id"] == instance_id
    assert len(live_instances(ec2, name)) == 1

    terminate_planned = run_module(endpoint, image_id, name, check=True, parent_state="absent")
    assert terminate_planned.changed, terminate_planned.result
    assert state_of(ec2, instance_id) == "running", "check mode must not terminate"

    terminated = run_module(endpoint, image_id, name, parent_state="absent")
    assert terminated.changed and not terminated.failed, terminated.result
    assert terminated.result["instance_ids"] == [instance_id]
    assert state_of(ec2, instance_id) == "terminated"

    terminated_again = run_module(endpoint, image_id, name, parent_state="absent")
    assert not terminated_again.changed and not terminated_again.failed, terminated_again.result
    assert terminated_again.result["instance_ids"] == []


@pytest.mark.parametrize(
    ("instance_type", "reason"),
    [
        ("t3.xlarge", "NitroEnclavesSupport=unsupported"),
        ("m5.large", "has 2 vCPUs"),
        ("no-such.type", "is not an EC2 instance type"),
    ],
)
def test_unsupported_instance_type_is_refused(
    endpoint: str, ec2: Any, image_id: str, instance_type: str, reason: str
) -> None:
    name = f"refused-{instance_type}"
    outcome = run_module(endpoint, image_id, name, parent_instance_type=instance_type)
    assert outcome.failed and not outcome.changed, outcome.result
    assert outcome.result["field"] == "instance_type"
    assert outcome.result["msg"].startswith(f"instance_type: {instance_type}")
    assert reason in outcome.result["msg"]
    assert live_instances(ec2, name) == []


def test_stopped_parent_is_started_and_tags_reconciled(endpoint: str, ec2: Any, image_id: str) -> None:
    name = "stopped-master"
    instance_id = run_module(endpoint, image_id, name).result["instance"]["instance_id"]
    ec2.stop_instances(InstanceIds=[instance_id])
    assert state_of(ec2, instance_id) == "stopped"

    restarted = run_module(endpoint, image_id, name, parent_tags={"Owner": "platform"})
    assert restarted.changed and not restarted.failed, restarted.result
    assert restarted.result["instance"]["instance_id"] == instance_id
    assert state_of(ec2, instance_id) == "running"
    assert restarted.result["instance"]["tags"]["Owner"] == "platform"
    # purge_tags defaults to true, yet the identity tags are never purged.
    assert restarted.result["instance"]["tags"]["k3sdaas:role"] == "master"

    stable = run_module(endpoint, image_id, name, parent_tags={"Owner": "platform"})
    assert not stable.changed, stable.result


def test_existing_instance_without_enclaves_is_refused(endpoint: str, ec2: Any, image_id: str) -> None:
    name = "plain-master"
    tags = [
        {"Key": "Name", "Value": name},
        {"Key": "k3sdaas:cluster", "Value": CLUSTER},
        {"Key": "k3sdaas:role", "Value": "master"},
    ]
    plain = ec2.run_instances(
        ImageId=image_id,
        InstanceType="m5.xlarge",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]
    assert plain["EnclaveOptions"] == {"Enabled": False}

    outcome = run_module(endpoint, image_id, name)
    assert outcome.failed and not outcome.changed, outcome.result
    assert outcome.result["field"] == "name"
    assert plain["InstanceId"] in outcome.result["msg"]
    assert "launched without Nitro Enclaves" in outcome.result["msg"]


def test_checked_state_is_a_preflight_that_changes_nothing(endpoint: str, ec2: Any, image_id: str) -> None:
    name = "preflight-master"
    fine = run_module(endpoint, image_id, name, parent_state="checked")
    assert not fine.failed and not fine.changed, fine.result
    assert fine.result["enclave_support"]["supported"] is True
    (image,) = ec2.describe_images(ImageIds=[image_id])["Images"]
    assert fine.result["image"] == {
        "image_id": image_id,
        "architecture": image["Architecture"],
        "root_device_name": image["RootDeviceName"],
    }

    missing = run_module(endpoint, "ami-0123456789abcdef0", name, parent_state="checked")
    assert missing.failed and not missing.changed, missing.result
    assert missing.result["field"] == "image_id"
    assert "ami-0123456789abcdef0 is not an AMI available in us-east-1" in missing.result["msg"]

    unsupported = run_module(endpoint, image_id, name, parent_state="checked", parent_instance_type="t3.xlarge")
    assert unsupported.failed and unsupported.result["field"] == "instance_type", unsupported.result
    assert live_instances(ec2, name) == []
