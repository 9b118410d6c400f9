"""What converge left on the moto server, read with boto3: network, security group rules, instances.

Runs between converge and side_effect (teardown); the endpoint and fake credentials come from the
verifier's environment in molecule.yml.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import pytest

CLUSTER = "molecule"
API_CIDR = "203.0.113.0/24"
SSH_CIDR = "198.51.100.7/32"
TAG = [{"Name": "tag:k3sdaas:cluster", "Values": [CLUSTER]}]


@pytest.fixture(scope="module")
def ec2() -> Any:
    return boto3.client("ec2", endpoint_url=os.environ["AWS_URL"], region_name=os.environ["AWS_REGION"])


def inbound(ec2: Any, group: dict[str, Any]) -> set[tuple[str, int, int, str]]:
    names = {g["GroupId"]: g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    return {
        (p["IpProtocol"], p["FromPort"], p["ToPort"], source)
        for p in group["IpPermissions"]
        for source in [r["CidrIp"] for r in p["IpRanges"]] + [names[g["GroupId"]] for g in p["UserIdGroupPairs"]]
    }


def test_network(ec2: Any) -> None:
    (vpc,) = ec2.describe_vpcs(Filters=TAG)["Vpcs"]
    (subnet,) = ec2.describe_subnets(Filters=TAG)["Subnets"]
    (igw,) = ec2.describe_internet_gateways(Filters=TAG)["InternetGateways"]
    (table,) = ec2.describe_route_tables(Filters=TAG)["RouteTables"]
    assert vpc["CidrBlock"] == "10.42.0.0/16"
    assert (subnet["VpcId"], subnet["CidrBlock"], subnet["MapPublicIpOnLaunch"]) == (vpc["VpcId"], "10.42.1.0/24", True)
    assert [a["VpcId"] for a in igw["Attachments"]] == [vpc["VpcId"]]
    assert [a["SubnetId"] for a in table["Associations"]] == [subnet["SubnetId"]]
    default_route = [r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
    assert [r["GatewayId"] for r in default_route] == [igw["InternetGatewayId"]]


def test_security_groups_open_exactly_the_cluster_ports(ec2: Any) -> None:
    groups = {g["GroupName"]: g for g in ec2.describe_security_groups(Filters=TAG)["SecurityGroups"]}
    assert sorted(groups) == ["molecule-master", "molecule-workers"]
    assert inbound(ec2, groups["molecule-master"]) == {
        ("tcp", 6443, 6443, API_CIDR),  # Nautilus API: users
        ("tcp", 6443, 6443, "molecule-workers"),  # Nautilus API: workers register and heartbeat
        ("tcp", 6444, 6444, "molecule-workers"),  # K3s supervisor/API: workers only
        ("tcp", 22, 22, SSH_CIDR),
    }
    assert inbound(ec2, groups["molecule-workers"]) == {
        ("tcp", 8080, 8080, "molecule-master"),  # worker agent
        ("tcp", 10250, 10250, "molecule-master"),  # kubelet
        ("udp", 8472, 8472, "molecule-workers"),  # flannel VXLAN between workers
        ("tcp", 22, 22, SSH_CIDR),
    }


def test_instances_require_imdsv2_encrypt_volumes_and_carry_tags(ec2: Any) -> None:
    live = [*TAG, {"Name": "instance-state-name", "Values": ["running"]}]
    instances = [i for r in ec2.describe_instances(Filters=live)["Reservations"] for i in r["Instances"]]
    by_name = {t["Value"]: i for i in instances for t in i["Tags"] if t["Key"] == "Name"}
    assert sorted(by_name) == ["molecule-master", "molecule-worker-1", "molecule-worker-2"]
    assert by_name["molecule-master"]["EnclaveOptions"] == {"Enabled": True}
    for name, instance in by_name.items():
        role = "master" if name.endswith("master") else "worker"
        group = "molecule-master" if role == "master" else "molecule-workers"
        tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
        assert tags == {"Name": name, "k3sdaas:cluster": CLUSTER, "k3sdaas:role": role, "Owner": "molecule"}
        assert instance["MetadataOptions"]["HttpTokens"] == "required", name
        assert instance["KeyName"] == CLUSTER
        assert [g["GroupName"] for g in instance["SecurityGroups"]] == [group]
        volume_ids = [m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]]
        volumes = ec2.describe_volumes(VolumeIds=volume_ids)["Volumes"]
        assert [(v["Encrypted"], v["Size"]) for v in volumes] == [(True, 30)], name
