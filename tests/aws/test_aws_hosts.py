"""The role k3sdaas.core.aws_hosts through ansible-playbook against a moto EC2 server on loopback.

Each test uses its own cluster name (the k3sdaas:cluster tag), so tests share the module's server
without seeing each other's instances. The lifecycle test uses the cluster name of the example
inventory, so inventories/aws.example/aws_ec2.yml is checked against the hosts the role launched.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from typing import Any

import pytest

from helpers.playbook import REPO, VENV_BIN, run_playbook

PLAYBOOK = REPO / "tests" / "playbooks" / "aws_hosts.yml"
EXAMPLE_INVENTORY = REPO / "inventories" / "aws.example"
REGION = "us-east-1"
LIVE_STATES = ["pending", "running", "stopping", "stopped"]

pytestmark = pytest.mark.slow


@dataclasses.dataclass
class Run:
    """What one ansible-playbook run did and the inventory it ended with."""

    changed: int
    failure: dict[str, Any] | None
    groups: dict[str, list[str]]
    hostvars: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def aws_env(endpoint: str) -> dict[str, str]:
    """Fake credentials and the moto endpoint, the way a user's shell or AWX provides them."""
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_URL": endpoint,
        "ANSIBLE_NOCOLOR": "1",
    }


@pytest.fixture(scope="module")
def linux_image_id(ec2: Any) -> str:
    """An Amazon Linux x86_64 AMI among the ones moto ships."""
    images = ec2.describe_images(
        Filters=[
            {"Name": "architecture", "Values": ["x86_64"]},
            {"Name": "name", "Values": ["amzn-ami-hvm-*"]},
        ]
    )["Images"]
    return images[0]["ImageId"]


def play(
    aws_env: dict[str, str],
    variables: dict[str, Any],
    check: bool = False,
    playbook: str = str(PLAYBOOK),
    inventory: str = "localhost,",
) -> Run:
    # SSH to moto's made-up addresses cannot work; the rest of the role runs as in production.
    extra_vars = {"aws_hosts_wait_for_ssh": False, **variables}
    run = run_playbook(playbook, extra_vars=extra_vars, inventory=inventory, check=check, env=aws_env, timeout=120)
    groups: dict[str, list[str]] = {}
    hostvars: dict[str, dict[str, Any]] = {}
    for each in run.report["plays"]:
        for task in each["tasks"]:
            if task["task"]["name"] == "Report the inventory groups":
                groups = task["hosts"]["localhost"]["msg"]
            elif task["task"]["name"] == "Report each host's connection variables":
                hostvars.update({host: result["msg"] for host, result in task["hosts"].items()})
    return Run(run.stats["localhost"]["changed"], run.first_failure(), groups, hostvars)


def teardown(aws_env: dict[str, str], check: bool = False) -> Run:
    """The collection's teardown playbook with the example inventory, as a user would run it."""
    return play(aws_env, {}, check=check, playbook="k3sdaas.core.teardown", inventory=str(EXAMPLE_INVENTORY))


def live_instances(ec2: Any, cluster: str) -> dict[str, dict[str, Any]]:
    """The cluster's instances that are not terminated, by Name tag."""
    reservations = ec2.describe_instances(
        Filters=[
            {"Name": "tag:k3sdaas:cluster", "Values": [cluster]},
            {"Name": "instance-state-name", "Values": LIVE_STATES},
        ]
    )["Reservations"]
    instances = [instance for reservation in reservations for instance in reservation["Instances"]]
    return {tags_of(instance)["Name"]: instance for instance in instances}


def tags_of(instance: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}


def example_inventory(aws_env: dict[str, str]) -> dict[str, Any]:
    completed = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", str(EXAMPLE_INVENTORY), "--list"],
        cwd=REPO,
        env=aws_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(completed.stdout)


def test_lifecycle_launches_once_and_terminates(aws_env: dict[str, str], ec2: Any, linux_image_id: str) -> None:
    cluster = "k3sdaas"  # the cluster inventories/aws.example/aws_ec2.yml filters on
    settings = {"aws_hosts_cluster": cluster, "aws_hosts_image_id": linux_image_id, "aws_hosts_tags": {"Owner": "qa"}}
    master, workers = "k3sdaas-master", ["k3sdaas-worker-1", "k3sdaas-worker-2"]

    planned = play(aws_env, settings, check=True)
    assert planned.failure is None, planned.failure
    assert planned.changed > 0
    assert live_instances(ec2, cluster) == {}, "check mode must not launch"
    assert planned.groups == {"k3sdaas_master": [], "k3sdaas_workers": [], "k3sdaas_nodes": []}

    launched = play(aws_env, settings)
    assert launched.failure is None, launched.failure
    assert launched.changed > 0
    instances = live_instances(ec2, cluster)
    assert sorted(instances) == [master, *workers]
    assert instances[master]["EnclaveOptions"] == {"Enabled": True}
    assert instances[master]["InstanceType"] == "m5.xlarge"
    for name in workers:
        assert instances[name]["EnclaveOptions"] == {"Enabled": False}
        assert instances[name]["InstanceType"] == "t3.large"
        assert instances[name]["MetadataOptions"]["HttpTokens"] == "required"
    for name, instance in instances.items():
        role = "master" if name == master else "worker"
        assert tags_of(instance) == {"Name": name, "k3sdaas:cluster": cluster, "k3sdaas:role": role, "Owner": "qa"}
        assert instance["ImageId"] == linux_image_id
    assert launched.groups == {
        "k3sdaas_master": [master],
        "k3sdaas_workers": workers,
        "k3sdaas_nodes": [master, *workers],
    }
    assert launched.hostvars == {
        name: {
            "ansible_host": instance["PrivateIpAddress"],
            "ansible_connection": "ssh",
            "ansible_user": "ec2-user",
            "ansible_ssh_private_key_file": "",
            "instance_id": instance["InstanceId"],
        }
        for name, instance in instances.items()
    }

    again = play(aws_env, settings)
    assert again.failure is None, again.failure
    assert again.changed == 0
    assert {name: i["InstanceId"] for name, i in live_instances(ec2, cluster).items()} == {
        name: i["InstanceId"] for name, i in instances.items()
    }
    assert again.groups == launched.groups and again.hostvars == launched.hostvars

    # A later run's inventory finds the same hosts, under the same names and groups, without launching.
    found = example_inventory(aws_env)
    assert found["k3sdaas_master"]["hosts"] == [master]
    assert sorted(found["k3sdaas_workers"]["hosts"]) == workers
    assert sorted(found["k3sdaas_nodes"]["children"]) == ["k3sdaas_master", "k3sdaas_workers"]
    for name, instance in instances.items():
        # ansible-inventory marks values from the API as untrusted: {"__ansible_unsafe": value}.
        assert found["_meta"]["hostvars"][name]["ansible_host"] == {"__ansible_unsafe": instance["PrivateIpAddress"]}

    terminate_planned = teardown(aws_env, check=True)
    assert terminate_planned.failure is None and terminate_planned.changed > 0, terminate_planned.failure
    assert sorted(live_instances(ec2, cluster)) == [master, *workers], "check mode must not terminate"

    terminated = teardown(aws_env)
    assert terminated.failure is None and terminated.changed > 0, terminated.failure
    assert live_instances(ec2, cluster) == {}
    states = ec2.describe_instances(InstanceIds=[i["InstanceId"] for i in instances.values()])["Reservations"]
    assert {i["State"]["Name"] for r in states for i in r["Instances"]} == {"terminated"}

    terminated_again = play(aws_env, {**settings, "aws_hosts_state": "absent"})
    assert terminated_again.failure is None and terminated_again.changed == 0, terminated_again.failure
    assert terminated_again.groups == {"k3sdaas_master": [], "k3sdaas_workers": [], "k3sdaas_nodes": []}


def test_rerun_with_fewer_workers_and_a_new_ami_keeps_the_rest(
    aws_env: dict[str, str], ec2: Any, linux_image_id: str, image_id: str
) -> None:
    cluster = "shrink"
    settings = {"aws_hosts_cluster": cluster, "aws_hosts_image_id": linux_image_id, "aws_hosts_address_type": "public"}
    before = play(aws_env, settings)
    assert before.failure is None, before.failure
    kept = {name: i["InstanceId"] for name, i in live_instances(ec2, cluster).items() if name != "shrink-worker-2"}
    ec2.stop_instances(InstanceIds=[kept["shrink-worker-1"]])

    assert image_id != linux_image_id
    after = play(aws_env, {**settings, "aws_hosts_worker_count": 1, "aws_hosts_image_id": image_id})
    assert after.failure is None and after.changed > 0, after.failure
    instances = live_instances(ec2, cluster)
    assert {name: i["InstanceId"] for name, i in instances.items()} == kept, "only the surplus worker goes"
    assert {i["State"]["Name"] for i in instances.values()} == {"running"}, "a stopped worker is started"
    assert after.groups["k3sdaas_workers"] == ["shrink-worker-1"]
    assert {name: v["ansible_host"] for name, v in after.hostvars.items()} == {
        name: instance["PublicIpAddress"] for name, instance in instances.items()
    }


@pytest.mark.parametrize(
    ("settings", "field", "reason"),
    [
        ({"aws_hosts_image_id": ""}, "aws_hosts_image_id", "is required when aws_hosts_state is present"),
        ({"aws_hosts_address_type": "elastic"}, "aws_hosts_address_type", "must be one of: private, public"),
        ({"aws_hosts_worker_count": "two"}, "aws_hosts_worker_count", "cannot be converted to an int"),
        ({"aws_hosts_master_instance_type": "t3.xlarge"}, "instance_type", "NitroEnclavesSupport=unsupported"),
    ],
)
def test_bad_settings_are_refused_before_launching(
    aws_env: dict[str, str], ec2: Any, linux_image_id: str, settings: dict[str, Any], field: str, reason: str
) -> None:
    cluster = "refused"
    outcome = play(aws_env, {"aws_hosts_cluster": cluster, "aws_hosts_image_id": linux_image_id, **settings})
    assert outcome.failure is not None and outcome.changed == 0
    assert field in outcome.failure["msg"] and reason in outcome.failure["msg"], outcome.failure["msg"]
    assert live_instances(ec2, cluster) == {}
