#!/usr/bin/python
# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ec2_enclave_instance
version_added: 0.1.0
short_description: Launch or terminate an EC2 instance with Nitro Enclaves enabled
description:
  - Launches one EC2 instance with C(EnclaveOptions.Enabled=true), the parent of a K3s-DaaS Nitro Enclave.
    M(amazon.aws.ec2_instance) cannot set C(EnclaveOptions), and EC2 only accepts it at launch.
  - The instance is identified by three tags, C(Name=)O(name), C(k3sdaas:cluster=)O(cluster) and
    C(k3sdaas:role=)O(node_role), among instances that are pending, running, stopping or stopped.
    A second run with the same identity changes nothing.
  - Before launching, the module asks EC2 (C(DescribeInstanceTypes)) whether O(instance_type) can host
    enclaves and refuses it otherwise. When EC2 reports C(NitroEnclavesSupport), that value decides;
    when it does not, support is inferred from the Nitro hypervisor. In both cases the type needs at
    least 4 vCPUs on x86_64 or 2 on arm64.
  - Each launch request carries a fresh C(ClientToken), so retries of that request cannot start a second instance.
  - In check mode a launch is sent as a C(DryRun) request, which validates permissions and parameters
    without starting anything, and waiters are skipped.
  - The root volume is encrypted (O(root_volume_encrypted)) with the account's default EBS key; its device name
    comes from the AMI (C(DescribeImages)).
author:
  - K3s-DaaS engineers (@k3sdaas)
options:
  state:
    description:
      - V(present) makes sure the instance exists and runs, launching it or starting a stopped one.
      - V(absent) terminates every instance that carries the identity tags.
      - V(checked) changes nothing; it checks that O(instance_type) can host enclaves and that O(image_id) exists
        in the region, as a pre-flight before anything else of a deployment is created.
    type: str
    choices: [present, absent, checked]
    default: present
  name:
    description:
      - Value of the C(Name) tag; part of the instance's identity.
    type: str
    required: true
  cluster:
    description:
      - Value of the C(k3sdaas:cluster) tag; part of the instance's identity.
    type: str
    required: true
  node_role:
    description:
      - Value of the C(k3sdaas:role) tag; part of the instance's identity.
    type: str
    default: master
  image_id:
    description:
      - AMI to launch, for example Amazon Linux 2023 for the architecture of O(instance_type).
      - Required when O(state=present).
      - Only used at launch; a different value for an existing instance gives a warning, not a replacement.
    type: str
  instance_type:
    description:
      - EC2 instance type. It must support Nitro Enclaves, see the description.
      - Only used at launch; a different value for an existing instance gives a warning, not a replacement.
    type: str
    default: m5.xlarge
  subnet_id:
    description:
      - Subnet to launch into. Without it EC2 uses the default VPC.
    type: str
  security_group_ids:
    description:
      - Security group IDs for the instance's primary network interface.
    type: list
    elements: str
  key_name:
    description:
      - Name of the EC2 key pair for SSH access.
    type: str
  iam_instance_profile:
    description:
      - Name or ARN of the instance profile, for example one that allows C(kms:Decrypt) with attestation conditions.
    type: str
  user_data:
    description:
      - User data passed to the instance at launch, as plain text.
    type: str
  metadata_http_tokens:
    description:
      - Whether the instance metadata service requires session tokens (IMDSv2).
      - The parent's C(nitro-enclaves-vsock-proxy) service uses IMDSv2, so V(required) works and is safer.
    type: str
    choices: [optional, required]
    default: required
  root_volume_encrypted:
    description:
      - Encrypt the root EBS volume at launch (EC2 cannot encrypt it later).
    type: bool
    default: true
  root_volume_size:
    description:
      - Size of the root volume in GiB, 1 to 16384; without it the AMI's size.
      - Only used at launch.
    type: int
  wait:
    description:
      - Wait until the instance is running (O(state=present)) or terminated (O(state=absent)).
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds to wait before failing, 0 to 86400.
    type: int
    default: 600
notes:
  - The identity tags are always set and cannot be purged; O(tags) adds to them.
  - Options are checked against EC2's formats and limits before any request is sent (resource ids, tag keys of
    128 and values of 256 characters, 50 tags, 16 KB of user data).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
  - k3sdaas.core.attributes
  - k3sdaas.core.attributes.actiongroup_aws
  - k3sdaas.core.attributes.check_mode_full
"""

EXAMPLES = r"""
- name: Launch the enclave parent of cluster prod
  k3sdaas.core.ec2_enclave_instance:
    name: prod-master
    cluster: prod
    image_id: ami-0123456789abcdef0
    instance_type: m5.xlarge
    subnet_id: subnet-0123456789abcdef0
    security_group_ids: [sg-0123456789abcdef0]
    key_name: ops
    iam_instance_profile: k3sdaas-enclave-parent
    tags:
      Owner: platform
  register: parent

- name: Show the parent's private address
  ansible.builtin.debug:
    msg: "{{ parent.instance.private_ip_address }}"

- name: Terminate it
  k3sdaas.core.ec2_enclave_instance:
    name: prod-master
    cluster: prod
    state: absent
"""

RETURN = r"""
instance:
  description:
    - The instance as EC2 describes it, with keys in snake_case and tags as a dict.
    - Empty when O(state=absent), and in check mode when the instance would be launched.
  returned: always
  type: complex
  contains:
    instance_id:
      description: The instance ID.
      type: str
      sample: i-0123456789abcdef0
    instance_type:
      description: The instance type.
      type: str
      sample: m5.xlarge
    image_id:
      description: The AMI the instance was launched from.
      type: str
      sample: ami-0123456789abcdef0
    state:
      description: The instance state.
      type: dict
      sample: {"code": 16, "name": "running"}
    enclave_options:
      description: Whether Nitro Enclaves are enabled on the instance.
      type: dict
      sample: {"enabled": true}
    private_ip_address:
      description: The primary private IPv4 address.
      type: str
      sample: 10.0.1.17
    tags:
      description: The instance's tags.
      type: dict
      sample: {"Name": "prod-master", "k3sdaas:cluster": "prod", "k3sdaas:role": "master"}
image:
  description: The AMI as EC2 describes it (ID, architecture, root device name).
  returned: when O(state=checked)
  type: dict
  sample: {"image_id": "ami-0123456789abcdef0", "architecture": "x86_64", "root_device_name": "/dev/xvda"}
instance_ids:
  description: IDs of the instances that were found, launched or terminated.
  returned: always
  type: list
  elements: str
  sample: ["i-0123456789abcdef0"]
enclave_support:
  description: Why O(instance_type) was judged able to host Nitro Enclaves.
  returned: when O(state=present) or O(state=checked)
  type: dict
  sample:
    instance_type: m5.xlarge
    supported: true
    inferred: false
    reason: "m5.xlarge: NitroEnclavesSupport=supported, 4 vCPUs"
"""

import re
import uuid
from typing import Any

try:
    import botocore
except ImportError:
    pass  # caught by AnsibleAWSModule

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.ec2 import (
    describe_instances,
    ensure_ec2_tags,
    run_instances,
    start_instances,
    terminate_instances,
)
from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import (
    boto3_tag_list_to_ansible_dict,
    boto3_tag_specifications,
)
from ansible_collections.amazon.aws.plugins.module_utils.transformation import ansible_dict_to_boto3_filter_list

from ansible_collections.k3sdaas.core.plugins.module_utils.aws_enclave_support import EnclaveSupport, enclave_support
from ansible_collections.k3sdaas.core.plugins.module_utils.module import ModuleError, failure

# Instances in these states still exist for our purpose; shutting-down/terminated ones do not.
LIVE_STATES = ["pending", "running", "stopping", "stopped"]
WAITER_DELAY = 15
ROLE_TAG = "k3sdaas:role"
CLUSTER_TAG = "k3sdaas:cluster"
MAX_WAIT_TIMEOUT = 86400
# EC2's documented limits: tag keys 128 and values 256 characters, 50 tags, user data 16 KB, names 255.
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MAX_TAGS = 50
MAX_USER_DATA = 16384
MAX_NAME = 255
MAX_VOLUME_GIB = 16384
ID_PATTERNS = {
    "image_id": re.compile(r"ami-[0-9a-f]{8}(?:[0-9a-f]{9})?"),
    "subnet_id": re.compile(r"subnet-[0-9a-f]{8}(?:[0-9a-f]{9})?"),
    "security_group_ids": re.compile(r"sg-[0-9a-f]{8}(?:[0-9a-f]{9})?"),
}
INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9]+")


class EnclaveInstanceError(ModuleError):
    """A refusal the user can fix; ``field`` names the option at fault."""


def check_options(params: dict[str, Any]) -> None:
    """Refuse what EC2 would refuse (its documented formats and limits) before any request is sent."""
    for option in ("name", "cluster", "node_role"):
        check_tag_text(option, params[option], MAX_TAG_VALUE, blank=False)
    for option, pattern in ID_PATTERNS.items():
        values = params[option] if isinstance(params[option], list) else [params[option]]
        for value in values:
            if value is not None and not pattern.fullmatch(value):
                raise EnclaveInstanceError(f"{option}: {value!r:.100} is not an EC2 id like {pattern.pattern}", option)
    if not INSTANCE_TYPE.fullmatch(params["instance_type"]):
        raise EnclaveInstanceError(
            f"instance_type: {params['instance_type']!r:.100} is not an EC2 instance type like m5.xlarge",
            "instance_type",
        )
    for option in ("key_name", "iam_instance_profile"):
        check_tag_text(option, params[option], MAX_NAME, blank=False)
    if params["user_data"] is not None and len(params["user_data"].encode("utf-8")) > MAX_USER_DATA:
        raise EnclaveInstanceError(f"user_data is limited to {MAX_USER_DATA} bytes by EC2", "user_data")
    tags = params["tags"] or {}
    if len(tags) + 3 > MAX_TAGS:
        raise EnclaveInstanceError(f"tags: EC2 allows {MAX_TAGS} tags, 3 of which are the identity", "tags")
    for key, value in tags.items():
        check_tag_text("tags", key, MAX_TAG_KEY, blank=False)
        check_tag_text("tags", value if isinstance(value, (str, dict, list)) else str(value), MAX_TAG_VALUE, True)
        if key.lower().startswith("aws:"):
            raise EnclaveInstanceError(f"tags: the aws: prefix is reserved by AWS ({key!r:.100})", "tags")
    if params["root_volume_size"] is not None and not 1 <= params["root_volume_size"] <= MAX_VOLUME_GIB:
        raise EnclaveInstanceError(
            f"root_volume_size must be 1 to {MAX_VOLUME_GIB} GiB, got {params['root_volume_size']}", "root_volume_size"
        )
    if not 0 <= params["wait_timeout"] <= MAX_WAIT_TIMEOUT:
        raise EnclaveInstanceError(f"wait_timeout must be 0 to {MAX_WAIT_TIMEOUT}, got {params['wait_timeout']}",
                                   "wait_timeout")


def check_tag_text(option: str, value: Any, limit: int, blank: bool) -> None:
    if value is None:
        return
    if not isinstance(value, str) or len(value) > limit or (not blank and not value.strip()):
        raise EnclaveInstanceError(f"{option}: {value!r:.100} must be text of {0 if blank else 1} to {limit} "
                                   "characters", option)


def identity_tags(name: str, cluster: str, node_role: str) -> dict[str, str]:
    return {"Name": name, CLUSTER_TAG: cluster, ROLE_TAG: node_role}


def identity_filters(tags: dict[str, str]) -> list[dict[str, Any]]:
    filters: dict[str, str | list[str]] = {f"tag:{key}": value for key, value in tags.items()}
    filters["instance-state-name"] = LIVE_STATES
    return ansible_dict_to_boto3_filter_list(filters)


def desired_tags(params: dict[str, Any]) -> dict[str, str] | None:
    """The tags to enforce: the user's plus the identity, which always wins and is never purged."""
    if params["tags"] is None:
        return None
    merged = dict(params["tags"])
    merged.update(identity_tags(params["name"], params["cluster"], params["node_role"]))
    return merged


def launch_request(
    params: dict[str, Any], client_token: str, dry_run: bool = False, root_device: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The RunInstances parameters for one enclave parent; ``root_device`` (the AMI's, see root_device_of) gets the
    volume settings."""
    tags = dict(params["tags"] or {})
    tags.update(identity_tags(params["name"], params["cluster"], params["node_role"]))
    request = {
        "ImageId": params["image_id"],
        "InstanceType": params["instance_type"],
        "MinCount": 1,
        "MaxCount": 1,
        "EnclaveOptions": {"Enabled": True},
        "MetadataOptions": {"HttpTokens": params["metadata_http_tokens"], "HttpEndpoint": "enabled"},
        "TagSpecifications": boto3_tag_specifications(tags, types=["instance", "volume"]),
        "ClientToken": client_token,
    }
    if params["subnet_id"]:
        request["SubnetId"] = params["subnet_id"]
    if params["security_group_ids"]:
        request["SecurityGroupIds"] = params["security_group_ids"]
    if params["key_name"]:
        request["KeyName"] = params["key_name"]
    if params["iam_instance_profile"]:
        key = "Arn" if params["iam_instance_profile"].startswith("arn:") else "Name"
        request["IamInstanceProfile"] = {key: params["iam_instance_profile"]}
    if params["user_data"]:
        request["UserData"] = params["user_data"]
    if root_device:
        ebs: dict[str, Any] = {"Encrypted": params["root_volume_encrypted"], "DeleteOnTermination": True}
        if params["root_volume_size"] or root_device["size"]:
            ebs["VolumeSize"] = params["root_volume_size"] or root_device["size"]
        request["BlockDeviceMappings"] = [{"DeviceName": root_device["name"], "Ebs": ebs}]
    if dry_run:
        request["DryRun"] = True
    return request


def launch_drift(instance: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """Launch-time options that differ on an existing instance; they need a replacement, so we only report them."""
    return [
        f"{option}: requested {params[option]}, instance {instance['InstanceId']} has {instance.get(key)}"
        for option, key in (("instance_type", "InstanceType"), ("image_id", "ImageId"))
        if params[option] and instance.get(key) != params[option]
    ]


def snake_instance(instance: dict[str, Any]) -> dict[str, Any]:
    if not instance:
        return {}
    result = camel_dict_to_snake_dict(instance, ignore_list=["Tags"])
    result["tags"] = boto3_tag_list_to_ansible_dict(instance.get("Tags", []))
    return result


def diff_view(instance: dict[str, Any]) -> dict[str, Any]:
    """A short, stable view of an instance for --diff."""
    if not instance:
        return {}
    return {
        "instance_id": instance.get("InstanceId", "(new)"),
        "instance_type": instance.get("InstanceType"),
        "image_id": instance.get("ImageId"),
        "state": instance.get("State", {}).get("Name"),
        "enclave_options": {"enabled": instance.get("EnclaveOptions", {}).get("Enabled", False)},
        "tags": boto3_tag_list_to_ansible_dict(instance.get("Tags", [])),
    }


def planned_instance(params: dict[str, Any]) -> dict[str, Any]:
    """What a launch would create, in EC2's shape, for the check-mode diff."""
    tags = dict(params["tags"] or {})
    tags.update(identity_tags(params["name"], params["cluster"], params["node_role"]))
    return {
        "InstanceType": params["instance_type"],
        "ImageId": params["image_id"],
        "State": {"Name": "running"},
        "EnclaveOptions": {"Enabled": True},
        "Tags": [{"Key": key, "Value": value} for key, value in sorted(tags.items())],
    }


def find_instances(client: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    tags = identity_tags(params["name"], params["cluster"], params["node_role"])
    reservations = describe_instances(client, Filters=identity_filters(tags))
    return [instance for reservation in reservations for instance in reservation["Instances"]]


def describe_one(client: Any, instance_id: str) -> dict[str, Any]:
    reservations = describe_instances(client, InstanceIds=[instance_id])
    return reservations[0]["Instances"][0]


def check_instance_type(client: Any, instance_type: str, region: str) -> EnclaveSupport:
    try:
        answer = client.describe_instance_types(InstanceTypes=[instance_type], aws_retry=True)
    except is_boto3_error_code("InvalidInstanceType"):
        raise EnclaveInstanceError(
            f"instance_type: {instance_type} is not an EC2 instance type in {region}", "instance_type"
        ) from None
    entries = answer.get("InstanceTypes", [])
    if not entries:
        raise EnclaveInstanceError(f"instance_type: {instance_type} is not offered in {region}", "instance_type")
    verdict = enclave_support(entries[0])
    if not verdict.supported:
        raise EnclaveInstanceError(f"instance_type: {verdict.reason}", "instance_type")
    return verdict


def describe_image(client: Any, image_id: str, region: str) -> dict[str, Any]:
    try:
        images = client.describe_images(ImageIds=[image_id], aws_retry=True).get("Images", [])
    except is_boto3_error_code(["InvalidAMIID.NotFound", "InvalidAMIID.Malformed"]):
        images = []
    if not images:
        raise EnclaveInstanceError(f"image_id: {image_id} is not an AMI available in {region}", "image_id")
    return images[0]


def root_device_of(module: AnsibleAWSModule, client: Any) -> dict[str, Any] | None:
    """The AMI's root device name and size when the root volume needs settings, else None (the AMI's defaults)."""
    params = module.params
    if not params["root_volume_encrypted"] and not params["root_volume_size"]:
        return None
    image = describe_image(client, params["image_id"], module.region)
    name = image.get("RootDeviceName") or "/dev/xvda"
    mapping = next((m for m in image.get("BlockDeviceMappings", []) if m.get("DeviceName") == name), {})
    return {"name": name, "size": mapping.get("Ebs", {}).get("VolumeSize")}


def ensure_checked(module: AnsibleAWSModule, client: Any) -> dict[str, Any]:
    """Pre-flight: the type can host enclaves and the AMI exists; nothing changes."""
    verdict = check_instance_type(client, module.params["instance_type"], module.region)
    if verdict.inferred:
        module.warn(verdict.reason)
    image = describe_image(client, module.params["image_id"], module.region)
    return {
        "changed": False,
        "instance": {},
        "instance_ids": [],
        "enclave_support": verdict.as_dict(),
        "image": {
            "image_id": image["ImageId"],
            "architecture": image.get("Architecture"),
            "root_device_name": image.get("RootDeviceName"),
        },
    }


def wait_for(module: AnsibleAWSModule, client: Any, waiter_name: str, instance_ids: list[str]) -> None:
    if module.check_mode or not module.params["wait"]:
        return
    attempts = max(1, module.params["wait_timeout"] // WAITER_DELAY)
    try:
        client.get_waiter(waiter_name).wait(
            InstanceIds=instance_ids, WaiterConfig={"Delay": WAITER_DELAY, "MaxAttempts": attempts}
        )
    except botocore.exceptions.WaiterError as e:
        module.fail_json_aws(
            e,
            msg=f"wait_timeout: {', '.join(instance_ids)} did not reach {waiter_name.replace('instance_', '')} "
            f"within {module.params['wait_timeout']}s",
        )


def launch(module: AnsibleAWSModule, client: Any) -> dict[str, Any]:
    params = module.params
    root_device = root_device_of(module, client)
    if module.check_mode:
        try:
            client.run_instances(**launch_request(params, uuid.uuid4().hex, dry_run=True, root_device=root_device))
        except is_boto3_error_code("DryRunOperation"):
            pass
        return {"changed": True, "instance": {}, "instance_ids": [], "msg": "Would have launched an enclave parent."}
    reservation = run_instances(client, **launch_request(params, uuid.uuid4().hex, root_device=root_device))
    instance_id = reservation["Instances"][0]["InstanceId"]
    wait_for(module, client, "instance_running", [instance_id])
    return {"changed": True, "instance": describe_one(client, instance_id), "instance_ids": [instance_id]}


def reconcile(module: AnsibleAWSModule, client: Any, instance: dict[str, Any]) -> dict[str, Any]:
    """Bring an existing parent to the desired state: running, enclaves on, tags as asked."""
    params = module.params
    instance_id = instance["InstanceId"]
    if not instance.get("EnclaveOptions", {}).get("Enabled", False):
        raise EnclaveInstanceError(
            f"name: instance {instance_id} ({params['name']}) exists but was launched without Nitro Enclaves; "
            "EnclaveOptions can only be set at launch, so terminate it (state=absent) and run again",
            "name",
        )
    for drift in launch_drift(instance, params):
        module.warn(f"{drift}; launch-time options are not changed on an existing instance")

    changed = False
    state = instance["State"]["Name"]
    if state == "stopping":
        wait_for(module, client, "instance_stopped", [instance_id])
    if state in ("stopped", "stopping"):
        changed = True
        if not module.check_mode:
            start_instances(client, [instance_id])
    if state != "running":
        wait_for(module, client, "instance_running", [instance_id])

    changed |= ensure_ec2_tags(
        client,
        module,
        instance_id,
        resource_type="instance",
        tags=desired_tags(params),
        purge_tags=params["purge_tags"],
    )
    if changed and not module.check_mode:
        instance = describe_one(client, instance_id)
    return {"changed": changed, "instance": instance, "instance_ids": [instance_id]}


def ensure_present(module: AnsibleAWSModule, client: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    verdict = check_instance_type(client, module.params["instance_type"], module.region)
    if verdict.inferred:
        module.warn(verdict.reason)
    existing = find_instances(client, module.params)
    if len(existing) > 1:
        raise EnclaveInstanceError(
            f"name: {len(existing)} instances carry the identity tags of {module.params['name']} "
            f"({', '.join(i['InstanceId'] for i in existing)}); refusing to pick one",
            "name",
        )
    before = existing[0] if existing else {}
    result = reconcile(module, client, before) if existing else launch(module, client)
    result["enclave_support"] = verdict.as_dict()
    after = result["instance"] or (planned_instance(module.params) if result["changed"] else {})
    return result, before, after


def ensure_absent(module: AnsibleAWSModule, client: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    existing = find_instances(client, module.params)
    ids = [instance["InstanceId"] for instance in existing]
    if ids and not module.check_mode:
        terminate_instances(client, ids)
        wait_for(module, client, "instance_terminated", ids)
    before = existing[0] if len(existing) == 1 else {}
    return {"changed": bool(ids), "instance": {}, "instance_ids": ids}, before, {}


def main() -> None:
    argument_spec = {
        "state": {"type": "str", "choices": ["present", "absent", "checked"], "default": "present"},
        "name": {"type": "str", "required": True},
        "cluster": {"type": "str", "required": True},
        "node_role": {"type": "str", "default": "master"},
        "image_id": {"type": "str"},
        "instance_type": {"type": "str", "default": "m5.xlarge"},
        "subnet_id": {"type": "str"},
        "security_group_ids": {"type": "list", "elements": "str"},
        "key_name": {"type": "str", "no_log": False},
        "iam_instance_profile": {"type": "str"},
        "user_data": {"type": "str"},
        "metadata_http_tokens": {"type": "str", "choices": ["optional", "required"], "default": "required"},
        "root_volume_encrypted": {"type": "bool", "default": True},
        "root_volume_size": {"type": "int"},
        "wait": {"type": "bool", "default": True},
        "wait_timeout": {"type": "int", "default": 600},
        "tags": {"type": "dict", "aliases": ["resource_tags"]},
        "purge_tags": {"type": "bool", "default": True},
    }
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        required_if=[("state", "present", ["image_id"]), ("state", "checked", ["image_id"])],
        supports_check_mode=True,
    )
    try:
        check_options(module.params)
    except EnclaveInstanceError as e:
        module.fail_json(**failure(e))
    retry_decorator = AWSRetry.jittered_backoff(
        catch_extra_error_codes=["IncorrectState", "InvalidInstanceID.NotFound"]
    )
    client = module.client("ec2", retry_decorator=retry_decorator)

    try:
        if module.params["state"] == "checked":
            result, before, after = ensure_checked(module, client), {}, {}
        elif module.params["state"] == "present":
            result, before, after = ensure_present(module, client)
        else:
            result, before, after = ensure_absent(module, client)
    except AnsibleAWSError as e:
        module.fail_json_aws_error(e)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="EC2 request failed")
    except Exception as e:  # noqa: BLE001  # pylint: disable=broad-exception-caught
        module.fail_json(**failure(e))  # the error path every k3sdaas.core module shares

    result["instance"] = snake_instance(result["instance"])
    if module._diff:
        result["diff"] = {"before": diff_view(before), "after": diff_view(after)}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
