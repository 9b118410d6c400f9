"""The role k3sdaas.core.aws_hosts through ansible-playbook against a moto EC2 server on loopback.

Each test uses its own cluster name (the k3sdaas:cluster tag), so tests share the module's server
without seeing each other's resources. The lifecycle test uses the cluster name of the example
inventory, so inventories/aws.example/aws_ec2.yml is checked against the hosts the role launched, and
the example's teardown against the network the role created.
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
KEY_NAME = "qa"
API_CIDR = "203.0.113.0/24"
SSH_CIDR = "198.51.100.7/32"

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


@pytest.fixture(scope="module")
def key_name(ec2: Any) -> str:
    ec2.create_key_pair(KeyName=KEY_NAME)
    return KEY_NAME


@pytest.fixture(scope="module")
def required(linux_image_id: str, key_name: str) -> dict[str, Any]:
    """What a user must set for the network path (the REQUIRED lines of the example's group_vars)."""
    return {
        "aws_hosts_image_id": linux_image_id,
        "aws_hosts_key_name": key_name,
        "aws_hosts_api_cidrs": [API_CIDR],
        "aws_hosts_ssh_cidrs": [SSH_CIDR],
    }


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
    return play(
        aws_env,
        {"teardown_confirm": True},
        check=check,
        playbook="k3sdaas.core.teardown",
        inventory=str(EXAMPLE_INVENTORY),
    )


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


def tagged(ec2: Any, cluster: str) -> dict[str, list[dict[str, Any]]]:
    """The network resources that carry the cluster's tag."""
    tag = [{"Name": "tag:k3sdaas:cluster", "Values": [cluster]}]
    return {
        "vpcs": ec2.describe_vpcs(Filters=tag)["Vpcs"],
        "subnets": ec2.describe_subnets(Filters=tag)["Subnets"],
        "internet_gateways": ec2.describe_internet_gateways(Filters=tag)["InternetGateways"],
        "route_tables": ec2.describe_route_tables(Filters=tag)["RouteTables"],
        "security_groups": ec2.describe_security_groups(Filters=tag)["SecurityGroups"],
    }


def resource_counts(ec2: Any) -> dict[str, int]:
    """How many of each kind the whole server holds (live instances only): a pre-check must change none."""
    live = [{"Name": "instance-state-name", "Values": LIVE_STATES}]
    return {
        "vpcs": len(ec2.describe_vpcs()["Vpcs"]),
        "subnets": len(ec2.describe_subnets()["Subnets"]),
        "internet_gateways": len(ec2.describe_internet_gateways()["InternetGateways"]),
        "route_tables": len(ec2.describe_route_tables()["RouteTables"]),
        "security_groups": len(ec2.describe_security_groups()["SecurityGroups"]),
        "instances": sum(len(r["Instances"]) for r in ec2.describe_instances(Filters=live)["Reservations"]),
        "volumes": len(ec2.describe_volumes()["Volumes"]),
    }


def inbound_rules(ec2: Any, group: dict[str, Any]) -> set[tuple[str, int, str]]:
    """(protocol, port, source) of every inbound rule; a source group is shown by its name."""
    names = {g["GroupId"]: g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    rules = set()
    for permission in group["IpPermissions"]:
        assert permission["FromPort"] == permission["ToPort"], "one port per rule, no ranges"
        sources = [r["CidrIp"] for r in permission["IpRanges"]]
        sources += [names[pair["GroupId"]] for pair in permission["UserIdGroupPairs"]]
        assert not permission["Ipv6Ranges"] and not permission["PrefixListIds"]
        rules |= {(permission["IpProtocol"], permission["FromPort"], source) for source in sources}
    return rules


def test_network_path_lifecycle_is_idempotent_and_torn_down(
    aws_env: dict[str, str], ec2: Any, linux_image_id: str, required: dict[str, Any]
) -> None:
    cluster = "k3sdaas"  # the cluster inventories/aws.example filters on
    settings = {**required, "aws_hosts_cluster": cluster, "aws_hosts_tags": {"Owner": "qa"}}
    master, workers = "k3sdaas-master", ["k3sdaas-worker-1", "k3sdaas-worker-2"]
    counts_before = resource_counts(ec2)

    planned = play(aws_env, settings, check=True)
    assert planned.failure is None, planned.failure
    assert planned.changed > 0
    assert resource_counts(ec2) == counts_before, "check mode must create nothing"
    assert planned.groups == {"k3sdaas_master": [], "k3sdaas_workers": [], "k3sdaas_nodes": []}

    launched = play(aws_env, settings)
    assert launched.failure is None, launched.failure
    assert launched.changed > 0
    network = tagged(ec2, cluster)
    assert {kind: len(found) for kind, found in network.items()} == {
        "vpcs": 1,
        "subnets": 1,
        "internet_gateways": 1,
        "route_tables": 1,
        "security_groups": 2,
    }
    (vpc,), (subnet,), (igw,), (table,) = (
        network["vpcs"],
        network["subnets"],
        network["internet_gateways"],
        network["route_tables"],
    )
    assert vpc["CidrBlock"] == "10.42.0.0/16" and subnet["CidrBlock"] == "10.42.1.0/24"
    assert subnet["VpcId"] == vpc["VpcId"] and subnet["MapPublicIpOnLaunch"] is True
    assert igw["Attachments"] == [{"State": "available", "VpcId": vpc["VpcId"]}]
    assert [a["SubnetId"] for a in table["Associations"]] == [subnet["SubnetId"]]
    assert {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": igw["InternetGatewayId"]}.items() <= next(
        route for route in table["Routes"] if route.get("DestinationCidrBlock") == "0.0.0.0/0"
    ).items()
    groups = {group["GroupName"]: group for group in network["security_groups"]}
    assert sorted(groups) == ["k3sdaas-master", "k3sdaas-workers"]
    assert inbound_rules(ec2, groups["k3sdaas-master"]) == {
        ("tcp", 6443, API_CIDR),
        ("tcp", 6443, "k3sdaas-workers"),
        ("tcp", 6444, "k3sdaas-workers"),
        ("tcp", 22, SSH_CIDR),
    }
    assert inbound_rules(ec2, groups["k3sdaas-workers"]) == {
        ("tcp", 8080, "k3sdaas-master"),
        ("tcp", 10250, "k3sdaas-master"),
        ("udp", 8472, "k3sdaas-workers"),
        ("tcp", 22, SSH_CIDR),
    }

    instances = live_instances(ec2, cluster)
    assert sorted(instances) == [master, *workers]
    assert instances[master]["EnclaveOptions"] == {"Enabled": True}
    assert instances[master]["InstanceType"] == "m5.xlarge"
    for name in workers:
        assert instances[name]["EnclaveOptions"] == {"Enabled": False}
        assert instances[name]["InstanceType"] == "t3.large"
    for name, instance in instances.items():
        role = "master" if name == master else "worker"
        assert tags_of(instance) == {"Name": name, "k3sdaas:cluster": cluster, "k3sdaas:role": role, "Owner": "qa"}
        assert instance["ImageId"] == linux_image_id
        assert instance["KeyName"] == KEY_NAME
        assert instance["MetadataOptions"]["HttpTokens"] == "required", f"{name}: IMDSv2 required"
        assert instance["SubnetId"] == subnet["SubnetId"]
        group = "k3sdaas-master" if role == "master" else "k3sdaas-workers"
        assert [g["GroupName"] for g in instance["SecurityGroups"]] == [group]
        volume_ids = [mapping["Ebs"]["VolumeId"] for mapping in instance["BlockDeviceMappings"]]
        volumes = ec2.describe_volumes(VolumeIds=volume_ids)["Volumes"]
        assert [(v["Encrypted"], v["Size"]) for v in volumes] == [(True, 30)], f"{name}: encrypted root volume"
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
    assert tagged(ec2, cluster) == network
    assert again.groups == launched.groups and again.hostvars == launched.hostvars

    # A later run's inventory finds the same hosts, under the same names and groups, without launching.
    found = example_inventory(aws_env)
    assert found["k3sdaas_master"]["hosts"] == [master]
    assert sorted(found["k3sdaas_workers"]["hosts"]) == workers
    assert sorted(found["k3sdaas_nodes"]["children"]) == ["k3sdaas_master", "k3sdaas_workers"]
    for name, instance in instances.items():
        # ansible-inventory marks values from the API as untrusted: {"__ansible_unsafe": value}.
        hostvars = found["_meta"]["hostvars"][name]
        assert hostvars["ansible_host"] == {"__ansible_unsafe": instance["PublicIpAddress"]}
        assert hostvars["instance_id"] == {"__ansible_unsafe": instance["InstanceId"]}

    terminate_planned = teardown(aws_env, check=True)
    assert terminate_planned.failure is None and terminate_planned.changed > 0, terminate_planned.failure
    assert sorted(live_instances(ec2, cluster)) == [master, *workers], "check mode must not terminate"
    assert tagged(ec2, cluster) == network, "check mode must not remove the network"

    terminated = teardown(aws_env)
    assert terminated.failure is None and terminated.changed > 0, terminated.failure
    assert live_instances(ec2, cluster) == {}
    states = ec2.describe_instances(InstanceIds=[i["InstanceId"] for i in instances.values()])["Reservations"]
    assert {i["State"]["Name"] for r in states for i in r["Instances"]} == {"terminated"}
    assert all(found == [] for found in tagged(ec2, cluster).values()), tagged(ec2, cluster)
    assert resource_counts(ec2) == counts_before, "teardown leaves nothing behind"

    terminated_again = play(aws_env, {**settings, "aws_hosts_state": "absent"})
    assert terminated_again.failure is None and terminated_again.changed == 0, terminated_again.failure
    assert terminated_again.groups == {"k3sdaas_master": [], "k3sdaas_workers": [], "k3sdaas_nodes": []}


def test_given_network_is_used_and_left_alone(
    aws_env: dict[str, str], ec2: Any, linux_image_id: str, image_id: str, key_name: str
) -> None:
    cluster = "shrink"
    vpc_id = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.77.1.0/24")["Subnet"]["SubnetId"]
    ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
    group_id = ec2.create_security_group(GroupName="ops", Description="ops", VpcId=vpc_id)["GroupId"]
    # No CIDRs: the role creates no group, so it needs none.
    settings = {
        "aws_hosts_cluster": cluster,
        "aws_hosts_image_id": linux_image_id,
        "aws_hosts_key_name": key_name,
        "aws_hosts_subnet_id": subnet_id,
        "aws_hosts_security_group_ids": [group_id],
        "aws_hosts_address_type": "public",
    }
    before = play(aws_env, settings)
    assert before.failure is None, before.failure
    assert all(found == [] for found in tagged(ec2, cluster).values()), "nothing created for a given network"
    instances = live_instances(ec2, cluster)
    assert {(i["SubnetId"], i["SecurityGroups"][0]["GroupId"]) for i in instances.values()} == {(subnet_id, group_id)}
    kept = {name: i["InstanceId"] for name, i in instances.items() if name != "shrink-worker-2"}
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

    removed = play(aws_env, {"aws_hosts_cluster": cluster, "aws_hosts_state": "absent"})
    assert removed.failure is None and removed.changed > 0, removed.failure
    assert live_instances(ec2, cluster) == {}
    assert ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"], "a given subnet is never deleted"
    assert ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"], "a given group is never deleted"


# (settings over the required ones, every variable the failure must name, a phrase of the reason)
BAD_SETTINGS = [
    (
        {"aws_hosts_image_id": "", "aws_hosts_key_name": "", "aws_hosts_api_cidrs": [], "aws_hosts_ssh_cidrs": []},
        ["aws_hosts_image_id", "aws_hosts_key_name", "aws_hosts_api_cidrs", "aws_hosts_ssh_cidrs"],
        "is required",
    ),
    ({"aws_hosts_image_id": "ami-zz"}, ["aws_hosts_image_id"], "an AMI id like ami-"),
    ({"aws_hosts_region": "mars"}, ["aws_hosts_region"], "a region like eu-west-1"),
    ({"aws_hosts_cluster": "Prod_1"}, ["aws_hosts_cluster"], "lowercase letters"),
    ({"aws_hosts_master_instance_type": "M5"}, ["aws_hosts_master_instance_type"], "an instance type like"),
    ({"aws_hosts_worker_count": 0}, ["aws_hosts_worker_count"], "1 or more"),
    (
        {"aws_hosts_vpc_cidr": "10.0.0.0/33", "aws_hosts_api_cidrs": ["0.0.0.0"]},
        ["aws_hosts_vpc_cidr", "aws_hosts_api_cidrs"],
        "IPv4 CIDR",
    ),
    ({"aws_hosts_subnet_cidr": "10.43.1.0/24"}, ["aws_hosts_subnet_cidr"], "inside aws_hosts_vpc_cidr"),
    (
        {"aws_hosts_subnet_id": "subnet-zz", "aws_hosts_security_group_ids": ["sg-zz"]},
        ["aws_hosts_subnet_id", "aws_hosts_security_group_ids"],
        "like subnet-0123456789abcdef0",
    ),
    ({"aws_hosts_security_group_ids": ["sg-0123456789abcdef0"]}, ["aws_hosts_subnet_id"], "belong to an existing VPC"),
    ({"aws_hosts_ssh_private_key_file": "/nonexistent/qa.pem"}, ["aws_hosts_ssh_private_key_file"], "no such file"),
    ({"aws_hosts_root_volume_size": 4}, ["aws_hosts_root_volume_size"], "8 to 16384 GiB"),
    ({"aws_hosts_address_type": "elastic"}, ["aws_hosts_address_type"], "must be one of: private, public"),
    ({"aws_hosts_worker_count": "two"}, ["aws_hosts_worker_count"], "cannot be converted to an int"),
    # Valid in form, but not in the region: checked with reads before anything is created.
    ({"aws_hosts_key_name": "missing"}, ["aws_hosts_key_name"], "no EC2 key pair 'missing'"),
    ({"aws_hosts_subnet_id": "subnet-0123456789abcdef0"}, ["aws_hosts_subnet_id"], "no subnet"),
    ({"aws_hosts_image_id": "ami-0123456789abcdef0"}, ["image_id"], "is not an AMI available in us-east-1"),
    ({"aws_hosts_master_instance_type": "t3.xlarge"}, ["instance_type"], "NitroEnclavesSupport=unsupported"),
]


@pytest.mark.parametrize(("settings", "fields", "reason"), BAD_SETTINGS, ids=lambda v: str(v)[:60])
def test_bad_settings_are_refused_before_anything_is_created(
    aws_env: dict[str, str],
    ec2: Any,
    required: dict[str, Any],
    settings: dict[str, Any],
    fields: list[str],
    reason: str,
) -> None:
    counts_before = resource_counts(ec2)
    outcome = play(aws_env, {**required, "aws_hosts_cluster": "refused", **settings})
    assert outcome.failure is not None and outcome.changed == 0
    message = outcome.failure["msg"]
    assert reason in message, message
    assert all(field in message for field in fields), message
    assert resource_counts(ec2) == counts_before, "a refused run creates nothing"
