#!/usr/bin/python
# Copyright: K3s-DaaS engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: k3s_join
short_description: Join this worker to the K3s-DaaS cluster after attesting the master
version_added: 0.1.0
description:
  - Runs on the worker. First it verifies the master's Nitro attestation for a fresh nonce (root, PCR0/1/2, the
    nonce) and that the TLS certificate the master presents is the one the document's C(user_data) binds; that
    certificate alone is trusted for the rest of the run. Nothing secret or signed is sent before this succeeds,
    and a mismatch fails naming the PCR (expected and got).
  - Then it proves possession of the node's SealToken with the node's own Sui key (O(key_file), generated here
    with mode 0600 when absent; its address must be the token's owner, so stake with C(owner) = RV(node_address)),
    calls C(register-worker), writes O(config_dir)/config.yaml (server, node-name, labels C(k3sdaas.io/token-id),
    C(k3sdaas.io/tier), C(k3sdaas.io/pool), taints; the keys role C(k3s_agent) writes) and the agent's environment
    file (C(K3S_TOKEN), mode 0600), and makes sure the K3s agent service is enabled and running.
  - A node that is registered with a valid token, whose files are unchanged and whose agent runs reports
    C(changed=false) and asks for no new join token. Any change registers again, since K3s needs a live join token
    to start.
  - Refusals name the cause - attestation mismatch, token expired, slashed, not staked in the pool or not owned by the
    node key, master unreachable, K3s missing.
options:
  master_url:
    description: The master's URL, the audience of the seal proof (for example V(https://10.0.0.5:6443)).
    type: str
    required: true
  token_id:
    description: The node's SealToken (its object id, C(0x) and 64 hex digits).
    type: str
    required: true
  node_id:
    description: The node id the token was staked for; also the K3s node name (lower-case letters, digits, C(-) and
      C(.), at most 64 characters).
    type: str
    required: true
  node_ip:
    description: The node's IP reported to the master; default the address this host uses towards the master.
    type: str
  key_file:
    description: The node's Sui key (mode 0600). Created when absent unless O(create_key=false).
    type: path
    default: /etc/k3sdaas/node.key
  create_key:
    description: Generate O(key_file) when it does not exist.
    type: bool
    default: true
  expected_pcrs:
    description:
      - PCR0, PCR1 and PCR2 of the master's enclave image (96 hex digits each), keys V(pcr0), V(pcr1), V(pcr2).
      - When not given, they are read from the deployment's on-chain EnclaveRegistry (O(sui_rpc_url),
        O(package_id)).
    type: dict
  sui_rpc_url:
    description: Sui RPC URL to read the EnclaveRegistry's PCRs from when O(expected_pcrs) is not given.
    type: str
  sui_ca_file:
    description: CA certificate to trust for O(sui_rpc_url).
    type: path
  package_id:
    description: The k3s_daas package whose EnclaveRegistry holds the PCRs.
    type: str
  attestation_root:
    description:
      - PEM root certificate for the attestation chain; default the AWS Nitro Enclaves Root-G1. On the local
        default, the Nitro simulator's C(root.pem).
    type: path
  pool:
    description: Value of the C(k3sdaas.io/pool) node label.
    type: str
    default: default
  node_labels:
    description: Further node labels (values are Kubernetes label values).
    type: dict
    default: {}
  node_taints:
    description: Node taints, C(key[=value]:NoSchedule|PreferNoSchedule|NoExecute).
    type: list
    elements: str
    default: []
  config_dir:
    description: Where config.yaml is written.
    type: path
    default: /etc/rancher/k3s
  env_file:
    description: The K3s agent unit's environment file, holding C(K3S_TOKEN).
    type: path
    default: /etc/systemd/system/k3s-agent.service.env
  k3s_binary:
    description: The K3s binary that must be installed (role C(k3s_agent) or C(worker_node) installs it).
    type: path
    default: /usr/local/bin/k3s
  service:
    description: The K3s agent's systemd unit (a C(.service) unit name).
    type: str
    default: k3s-agent.service
  manage_service:
    description: Check for K3s, enable and (re)start O(service). V(false) only writes the files.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each answer of the master, 1 to 120.
    type: float
    default: 10
  start_timeout:
    description:
      - Seconds to wait, 1 to 3600, for O(service) to become active after it is (re)started. K3s's units are
        C(Type=notify) without a start timeout, so the agent is started without blocking and the module fails,
        with the agent's last log lines, when it is not ready in time (for example when it cannot reach its server).
    type: float
    default: 120
extends_documentation_fragment:
  - k3sdaas.core.attributes
  - k3sdaas.core.attributes.check_mode_full
notes:
  - Check mode attests and logs in (the master checks the token) but registers nothing and writes nothing.
author:
  - K3s-DaaS engineers (@k3sdaas)
"""

EXAMPLES = r"""
- name: Join the worker to the attested master
  k3sdaas.core.k3s_join:
    master_url: "https://{{ hostvars[groups['k3sdaas_master'][0]].ansible_host }}:6443"
    token_id: "{{ worker_token_id }}"
    node_id: "{{ inventory_hostname }}"
    sui_rpc_url: https://fullnode.testnet.sui.io:443
    package_id: "{{ k3sdaas_package_id }}"
    node_taints: ["k3sdaas.io/dedicated=ci:NoSchedule"]

- name: Join with the PCRs given explicitly, against the Nitro simulator's root
  k3sdaas.core.k3s_join:
    master_url: https://127.0.0.1:6443
    token_id: "0x8f1c…"
    node_id: worker-1
    expected_pcrs: {pcr0: "{{ pcr0 }}", pcr1: "{{ pcr1 }}", pcr2: "{{ pcr2 }}"}
    attestation_root: /var/lib/k3sdaas/nitro-root.pem
"""

RETURN = r"""
node_address:
  description: The node key's Sui address (the token's owner).
  returned: always
  type: str
key_created:
  description: Whether O(key_file) was generated by this run.
  returned: always
  type: bool
registration:
  description: The master's record of this node; C(registered_now) is true when this run asked for a join token.
  returned: success
  type: dict
  sample: {node_id: worker-1, registered_now: true, supervisor_url: "https://10.0.0.5:6444",
           join_token_expires_at: "2026-12-01T10:10:00+00:00"}
tier:
  description: The token's tier name (viewer, developer, admin, super-user).
  returned: success
  type: str
token_expires_at_ms:
  description: When the seal token expires, chain time in milliseconds.
  returned: success
  type: int
pcrs:
  description: The attested PCR0/1/2 of the master, hex.
  returned: success
  type: dict
config_path:
  description: The K3s agent's config.yaml.
  returned: always
  type: str
"""

import ipaddress
import os
import re
import socket
import stat
import time
from pathlib import Path
from urllib.parse import urlsplit

from ansible_collections.k3sdaas.core.plugins.module_utils.module import K3sdaasModule, failure

try:
    from pysui.abstracts.client_keypair import SignatureScheme
    from pysui.sui.sui_crypto import create_new_keypair

    from k3sdaas.agent.join import LABEL_VALUE, TAINT, JoinSpec, address_towards, current_server, plan, register
    from k3sdaas.agent.master import MasterLink, ensure_node_key, registry_pcrs
    from k3sdaas.attestation import PcrPolicy, load_root
    from k3sdaas.chain import ChainSettings, normalize_address
    from k3sdaas.chain.keys import signer_from_text
    from k3sdaas.chain.transport import parse_rpc_url, tls_context
    from k3sdaas.errors import K3sdaasError
except ImportError:
    pass  # K3sdaasModule reports the missing runtime


def main():
    module = K3sdaasModule(
        argument_spec=dict(
            master_url=dict(type="str", required=True),
            token_id=dict(type="str", required=True),
            node_id=dict(type="str", required=True),
            node_ip=dict(type="str"),
            key_file=dict(type="path", default="/etc/k3sdaas/node.key"),
            create_key=dict(type="bool", default=True),
            expected_pcrs=dict(type="dict"),
            sui_rpc_url=dict(type="str"),
            sui_ca_file=dict(type="path"),
            package_id=dict(type="str"),
            attestation_root=dict(type="path"),
            pool=dict(type="str", default="default"),
            node_labels=dict(type="dict", default={}),
            node_taints=dict(type="list", elements="str", default=[]),
            config_dir=dict(type="path", default="/etc/rancher/k3s"),
            env_file=dict(type="path", default="/etc/systemd/system/k3s-agent.service.env"),
            k3s_binary=dict(type="path", default="/usr/local/bin/k3s"),
            service=dict(type="str", default="k3s-agent.service"),
            manage_service=dict(type="bool", default=True),
            timeout=dict(type="float", default=10.0),
            start_timeout=dict(type="float", default=120.0),
        ),
        ranges={"timeout": (1, 120), "start_timeout": (1, 3600)},
        required_one_of=[("expected_pcrs", "package_id")],
        required_by={"package_id": "sui_rpc_url"},
    )
    module.guarded(run, module)


# Kubernetes names: a node name (RFC 1123, and at most the 64 bytes a token's node id may have on chain),
# a label key (optional DNS prefix, then a name of at most 63 characters) and a systemd unit name.
NODE_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,62}[a-z0-9])?")
LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
UNIT_NAME = re.compile(r"[A-Za-z0-9:_.@-]{1,250}\.service")
MAX_PEM_BYTES = 1024 * 1024


def path_problem(value, must_exist, kind):
    """Why ``value`` is not a usable path of file type ``kind`` (absent is fine unless ``must_exist``), or None."""
    if not value or not os.path.isabs(value) or len(value) > 4096:
        return f"must be an absolute path of at most 4096 characters, got {value[:80]!r}"
    try:
        found = os.stat(value)
    except FileNotFoundError:
        return f"{value} does not exist" if must_exist else None
    except OSError as exc:
        return f"{value[:80]} cannot be read: {exc.strerror}"
    if stat.S_IFMT(found.st_mode) != kind:
        return f"{value} is not a {'directory' if kind == stat.S_IFDIR else 'regular file'}"
    if must_exist and found.st_size > MAX_PEM_BYTES:  # a PEM file, read whole
        return f"{value} is larger than {MAX_PEM_BYTES} bytes"
    return None


def url_problem(value):
    try:
        parts = urlsplit(value)
        usable = (len(value) <= 2048 and parts.scheme == "https" and parts.hostname and parts.port != 0
                  and parts.path in ("", "/") and not parts.query and not parts.fragment)
    except ValueError:  # a bad IPv6 literal or port
        usable = False
    return None if usable else f"must be https://host[:port] of the master, got {value[:80]!r}"


def problem_of(check, *args):
    """``check(*args)``'s refusal as text (K3sdaasError, ValueError), or None: fail_json is called outside of it."""
    try:
        check(*args)
    except (K3sdaasError, ValueError, TypeError) as exc:
        return f"is not usable: {exc}"
    return None


def problems(params):
    """(option, why) for every bad option, checked before anything is sent to the master or written."""
    found = [("master_url", url_problem(params["master_url"]))]
    if not NODE_NAME.fullmatch(params["node_id"]):
        found.append(("node_id", "must be a Kubernetes node name (lower-case letters, digits, '-' and '.', at most "
                                 f"64 characters), got {params['node_id'][:80]!r}"))
    if params["node_ip"] is not None:
        found.append(("node_ip", problem_of(ipaddress.ip_address, params["node_ip"])))
    if not params["pool"] or not LABEL_VALUE.fullmatch(params["pool"]):
        found.append(("pool", f"must be a non-empty Kubernetes label value, got {params['pool'][:80]!r}"))
    found.extend(("node_labels", f"{str(key)[:80]!r}={str(value)[:80]!r} is not a Kubernetes label")
                 for key, value in params["node_labels"].items()
                 if not LABEL_KEY.fullmatch(str(key)) or not LABEL_VALUE.fullmatch(str(value)))
    found.extend(("node_taints", f"{taint[:80]!r} is not key[=value]:NoSchedule|PreferNoSchedule|NoExecute")
                 for taint in params["node_taints"] if not TAINT.fullmatch(taint))
    if not UNIT_NAME.fullmatch(params["service"]):
        found.append(("service", f"must be a systemd service unit name, got {params['service'][:80]!r}"))
    if params["sui_rpc_url"] is not None:
        found.append(("sui_rpc_url", problem_of(parse_rpc_url, params["sui_rpc_url"])))
    for option, load in (("sui_ca_file", tls_context), ("attestation_root", load_root)):
        if params[option] is not None:
            found.append((option, path_problem(params[option], True, stat.S_IFREG)
                          or problem_of(load, params[option])))
    found.append(("config_dir", path_problem(params["config_dir"], False, stat.S_IFDIR)))
    found.append(("env_file", path_problem(params["env_file"], False, stat.S_IFREG)))
    found.append(("key_file", path_problem(params["key_file"], not params["create_key"], stat.S_IFREG)))
    return [(option, why) for option, why in found if why]


def validate(module):
    params = module.params
    for option, why in problems(params)[:1]:
        module.fail_json(msg=f"{option} {why}", field=option, error_type="InvalidInput")
    binary = params["k3s_binary"]
    if params["manage_service"] and not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        module.fail_json(msg=f"K3s is missing: k3s_binary {binary[:200]} is not an executable file (run role "
                             "k3sdaas.core.worker_node or k3s_agent first)", field="k3s_binary",
                         error_type="K3sMissing")


def unit_properties(module, service, *names):
    systemctl = module.get_bin_path("systemctl", required=True)
    rc, out, _err = module.run_command([systemctl, "show", service, "--property=" + ",".join(names)])
    return rc, dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def service_state(module, service):
    """(enabled, active) of the unit; fails naming K3s when the unit does not exist."""
    rc, props = unit_properties(module, service, "LoadState", "ActiveState", "UnitFileState")
    if rc != 0 or props.get("LoadState") != "loaded":
        module.fail_json(msg=f"K3s is missing: unit {service} is not installed (run role k3sdaas.core.worker_node "
                             "or k3s_agent first)", field="service", error_type="K3sMissing")
    return props.get("UnitFileState") == "enabled", props.get("ActiveState") == "active"


def start_agent(module, service, restart, timeout, result):
    """Enable and (re)start the unit, then wait at most ``timeout`` seconds for it to be active.

    K3s's units are Type=notify with TimeoutStartSec=0: a blocking ``systemctl restart`` waits for ever on an
    agent that keeps retrying an unreachable server, so the job is queued with --no-block and watched here.
    """
    systemctl = module.get_bin_path("systemctl", required=True)
    before = unit_properties(module, service, "InvocationID")[1].get("InvocationID", "")
    if restart:
        module.run_command([systemctl, "daemon-reload"], check_rc=True)
    module.run_command([systemctl, "enable", service], check_rc=True)
    module.run_command([systemctl, "restart" if restart else "start", "--no-block", service], check_rc=True)
    deadline = time.monotonic() + timeout
    while True:
        props = unit_properties(module, service, "ActiveState", "SubState", "InvocationID")[1]
        started = not restart or props.get("InvocationID", "") not in ("", before)
        if started and props.get("ActiveState") == "active":
            return
        if (started and props.get("ActiveState") == "failed") or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    journalctl = module.get_bin_path("journalctl")
    log = module.run_command([journalctl, "--unit", service, "--lines", "10", "--no-pager", "--output", "cat"])[1] \
        if journalctl else ""
    module.fail_json(msg=f"the K3s agent {service} is not active {timeout:g} s after its start "
                         f"({props.get('ActiveState')}/{props.get('SubState')}); its last log lines:\n{log.strip()}",
                     field="start_timeout", error_type="AgentNotReady", **result)


def policy_of(module):
    params = module.params
    if params["expected_pcrs"] is not None:
        pcrs = {str(k).lower(): v for k, v in params["expected_pcrs"].items()}
        missing = [name for name in ("pcr0", "pcr1", "pcr2") if not pcrs.get(name)]
        if missing or len(pcrs) != 3:
            module.fail_json(msg="expected_pcrs must have exactly the keys pcr0, pcr1 and pcr2", field="expected_pcrs",
                             error_type="InvalidInput")
        why = problem_of(PcrPolicy.for_image, pcrs["pcr0"], pcrs["pcr1"], pcrs["pcr2"])
        if why:
            module.fail_json(msg=f"expected_pcrs {why}", field="expected_pcrs", error_type="InvalidInput")
        return PcrPolicy.for_image(pcrs["pcr0"], pcrs["pcr1"], pcrs["pcr2"])
    # Reading the registry signs nothing; the client still wants a key, so a throw-away one.
    reader = signer_from_text(create_new_keypair(scheme=SignatureScheme.ED25519)[1].to_bech32())
    settings = ChainSettings(rpc_url=params["sui_rpc_url"], signer=reader, ca_file=params["sui_ca_file"],
                             timeout=params["timeout"], retries=1)
    return module.run(registry_pcrs(settings, normalize_address(params["package_id"], "package_id")))


def run(module):
    params = module.params
    validate(module)
    token_id = normalize_address(params["token_id"], "token_id")
    config_path = Path(params["config_dir"]) / "config.yaml"
    result = dict(changed=False, config_path=str(config_path), key_created=False)
    if params["manage_service"]:
        enabled, active = service_state(module, params["service"])
    else:
        enabled = active = True
    root = load_root(params["attestation_root"]) if params["attestation_root"] else None
    link = MasterLink(params["master_url"], root=root, policy=policy_of(module), timeout=params["timeout"])
    spec = JoinSpec(token_id=token_id, node_id=params["node_id"],
                    node_ip=params["node_ip"] or address_towards(link.url), config_path=config_path,
                    env_path=Path(params["env_file"]), pool=params["pool"],
                    labels={str(k): str(v) for k, v in params["node_labels"].items()},
                    taints=params["node_taints"],
                    capacity={"cpu": os.cpu_count() or 1, "hostname": socket.gethostname()})
    key_path = Path(params["key_file"])
    if not key_path.exists() and module.check_mode:
        if not params["create_key"]:
            module.fail_json(msg=f"node key {key_path} does not exist", field="key_file", error_type="InvalidInput")
        link.attest()  # attestation is still checked; without a key there is nothing registered to compare
        result.update(changed=True, key_created=True)
        module.exit_json(**result)
    signer, created = ensure_node_key(key_path, create=params["create_key"])
    result.update(node_address=signer.address, key_created=created)
    try:
        planned = plan(link, signer, spec)
        result.update(tier=planned.token["tier_name"], token_expires_at_ms=planned.token["expires_at_ms"],
                      pcrs=planned.attested.pcrs)
        registration = {"node_id": spec.node_id, "registered_now": False}
        needs_join = not planned.files_ok
        if needs_join and not module.check_mode:
            material = register(link, signer, spec, planned)
            module.hide(material["join_token"])  # the agent's log lines may be returned below
            registration.update(registered_now=True, supervisor_url=material["supervisor_url"],
                                join_token_expires_at=material["join_token_expires_at"])
        elif not needs_join:
            registration["supervisor_url"] = current_server(planned.before)
    except Exception as exc:  # noqa: BLE001  # pylint: disable=broad-exception-caught  # keep what is known
        module.fail_json(**failure(exc), **result)
    finally:
        link.close()
    changed = needs_join or created
    result.update(registration=registration)
    if params["manage_service"]:
        changed = changed or not (enabled and active)
        if not module.check_mode and (needs_join or not (enabled and active)):
            start_agent(module, params["service"], needs_join, params["start_timeout"], dict(result, changed=changed))
    result.update(changed=changed)
    if module.diff_mode and needs_join:
        result["diff"] = planned.diff(config_path)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
