"""The bad-input battery: every module through ansible-playbook, with bad values for every option.

The cases are generated from each module's real ``argument_spec`` (captured by running the module's
``main()`` with AnsibleModule replaced by a recorder), so a new option is covered without editing this
file: every option gets the bad values of its type, plus the option-specific ones below. Each case
must fail with a message naming the option, as a deliberate fail_json and not an exception (the
playbook runs with ANSIBLE_DISPLAY_TRACEBACK=error, which shows which one it was), and nothing may
change: no transaction reaches the Sui node, the pool, balance and tokens read the same, no enclave or
EIF appears, no EC2 instance exists.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from nautilus import conftest as harness  # the master's test harness, as functions (its fixtures stay there)

from helpers.playbook import REPO, run_playbook
from helpers.sui import no_transaction_reaches
from k3sdaas.agent.master import ensure_node_key
from k3sdaas.chain import ChainClient
from k3sdaas_localnet.nitro.pki import SimulatedPki

from .conftest import Chain

COLLECTION = REPO / "collections" / "ansible_collections" / "k3sdaas" / "core"
MODULES = sorted(p.stem for p in (COLLECTION / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
SUI_MODULES = [m for m in MODULES if m.startswith(("sui_", "seal_"))]
HUGE = "x" * 100_000
SIM = [sys.executable, "-m", "k3sdaas_localnet.nitro.cli"]

# Bad for any option of the type. Paths are placeholders resolved by the `files` fixture.
BY_TYPE: dict[str, list[Any]] = {
    "int": ["ten", 1.5, -1, 2**64, ""],
    "float": ["nan", "inf", -1.0, 0, 1e300, "ten"],
    "bool": ["maybe", [1]],
    "path": ["", "@DIR@", "/dev/zero", "@FIFO@", "@MISSING@", "/" + "p" * 5000],
    "raw": [{"a": 1}, [], -1, "", HUGE],
    "list": ["", [""], [HUGE], [{"a": 1}]],
    "dict": ["not a dict", {"": "v"}, {"k": HUGE}, [1]],
    "str": ["", HUGE],
}
CHOICES: list[Any] = ["bogus", "", [1]]
# Bad only for that option (its format, range or meaning).
BY_OPTION: dict[str, list[Any]] = {
    "rpc_url": ["https://[::1", "http://node:9000", "127.0.0.1:99999", "https://node:9000/path", "h" * 300],
    "ca_file": ["@NOT_PEM@"],
    "key_file": ["@NOT_KEY@", "@READABLE_KEY@"],
    "timeout": [601, "-inf"],
    "retries": [11, 2000],
    "package_id": ["0xzz", "0x" + "1" * 65],
    "node_id": ["n" * 65],
    # (below the 0.5 SUI minimum is the chain's rule, decided by the node: a node that already holds more
    # is rightly left alone, so it is not a bad value here)
    "amount": ["0.0000000001 SUI", "2 BTC", "1e999", "nan", "-1 SUI", 0, 2**64, "18446744073709551616 MIST"],
    "owner": ["0xzz", "0x" + "1" * 65],
    "token_id": ["0xzz"],
    "min_tier": ["0", "5", "root"],
    "reason": ["r" * 200_000],
    "bps": [0, 10001],
    "token_ttl_ms": [0],
    "cpu_count": [0],
    "memory_mib": [0, 63],
    "enclave_cid": [0, 1, 2, 3, 2**32 - 1, 2**32],
    "nitro_cli": ["'unclosed", "/nonexistent/nitro-cli"],
    "docker_uri": ["u" * 600, "   "],
    "enclave_name": ["e" * 300],
    "image_id": ["ami-zz"],
    "subnet_id": ["subnet-zz"],
    "security_group_ids": [["sg-zz"]],
    "instance_type": ["M5.XLARGE"],
    "tags": [{"aws:owner": "x"}, {f"k{i}": "v" for i in range(48)}],
    "wait_timeout": [86401],
    "user_data": ["u" * 16385],
    "master_url": ["https://[::1", "http://master:6443", "https://master:99999", "https://master:6443/api",
                   "master:6443"],
    "sui_rpc_url": ["https://[::1", "http://node:9000", "127.0.0.1:99999", "https://node:9000/path"],
    "sui_ca_file": ["@NOT_PEM@"],
    "attestation_root": ["@NOT_PEM@"],
    "expected_pcrs": [{"pcr0": "zz", "pcr1": "00", "pcr2": "00"}, {"pcr0": "00" * 48, "pcr1": "00" * 48},
                      {"pcr0": "00" * 48, "pcr1": "00" * 48, "pcr2": "00" * 48, "pcr9": "00"}],
    "node_ip": ["10.0.0.256", "master.example"],
    "node_labels": [{"bad key!": "v"}, {"k": "v" * 64}],
    "node_taints": [["k=v:Sometimes"], ["=v:NoSchedule"]],
    "service": ["k3s-agent", "../k3s-agent.service"],
    "pool": ["p" * 64, "-pool"],
}
# Values that are right for that option although its type lists them as bad.
VALID: dict[tuple[str, str], list[Any]] = {
    ("nitro_enclave", "allocator_file"): ["@MISSING@"],  # documented: warn, leave the checks to nitro-cli
    ("ec2_enclave_instance", "user_data"): [""],  # no user data
    # a fresh node: the key is generated, the K3s files are written where they are missing
    ("k3s_join", "key_file"): ["@MISSING@"],
    ("k3s_join", "config_dir"): ["@MISSING@", "@DIR@"],
    ("k3s_join", "env_file"): ["@MISSING@"],
}
# Options that only make sense with a partner (required_together): the partner gets a valid value.
COMPANIONS: dict[tuple[str, str], dict[str, str]] = {
    ("nitro_enclave", "signing_certificate"): {"private_key": "@CERT_KEY@"},
    ("nitro_enclave", "private_key"): {"signing_certificate": "@CERT@"},
    ("k3s_join", "k3s_binary"): {"manage_service": True},  # only looked for when the module manages the service
}

CAPTURE = r"""
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
from ansible.module_utils import basic
from ansible_collections.amazon.aws.plugins.module_utils import modules as aws_modules

class Captured(Exception):
    pass

def capture(self, argument_spec=None, **kwargs):
    raise Captured(argument_spec, kwargs)

basic.AnsibleModule.__init__ = capture
aws_modules.AnsibleAWSModule.__init__ = capture
specs = {}
for name in sys.argv[2:]:
    try:
        module = importlib.import_module("ansible_collections.k3sdaas.core.plugins.modules." + name)
        module.main()
    except Captured as captured:
        spec, kwargs = captured.args
    except BaseException as exc:  # a module that cannot even build its AnsibleModule: reported by a test
        specs[name] = dict(error=repr(exc), options={}, mutually_exclusive=[])
        continue
    keys = ("type", "choices", "elements")
    specs[name] = dict(
        options={option: {key: value.get(key) for key in keys} for option, value in spec.items()},
        mutually_exclusive=kwargs.get("mutually_exclusive", []),
    )
print(json.dumps(specs))
"""


def argument_specs() -> dict[str, Any]:
    """Each module's own argument_spec (for an AWS module, what it adds to amazon.aws's common options)."""
    done = subprocess.run([sys.executable, "-c", CAPTURE, str(REPO / "collections"), *MODULES],
                          capture_output=True, text=True, check=True, timeout=120)
    specs: dict[str, Any] = json.loads(done.stdout)
    return specs


SPECS = argument_specs()


def cases(module: str) -> list[tuple[str, Any]]:
    """(option, bad value) for every option of ``module``."""
    found = []
    for option, spec in SPECS[module]["options"].items():
        values = CHOICES if spec["choices"] else BY_TYPE[spec["type"] or "str"]
        for value in [*values, *BY_OPTION.get(option, [])]:
            if value not in VALID.get((module, option), []):
                found.append((option, value))
    return found


def test_every_option_of_every_module_has_cases() -> None:
    assert set(SPECS) == set(MODULES)
    assert not {name: spec["error"] for name, spec in SPECS.items() if "error" in spec}
    for module in MODULES:
        options = {option for option, _value in cases(module)}
        assert options == set(SPECS[module]["options"]), module
    assert {"rpc_url", "key_file", "timeout", "retries"} <= set(SPECS["sui_stake"]["options"])


def test_every_module_has_a_battery() -> None:
    """A new module needs a valid baseline in a battery test below; its options then come from its spec."""
    assert set(MODULES) == {*SUI_MODULES, "nautilus_register", "nitro_enclave", "ec2_enclave_instance", "k3s_join"}


def resolve(value: Any, files: dict[str, str]) -> Any:
    if isinstance(value, str) and value in files:
        return files[value]
    return value


def case_args(module: str, baseline: dict[str, Any], option: str, value: Any, files: dict[str, str]) -> dict[str, Any]:
    args = dict(baseline)
    for group in SPECS[module]["mutually_exclusive"]:  # test the option alone, not the exclusion rule
        if option in group:
            for other in group:
                args.pop(other, None)
    args.update({name: resolve(v, files) for name, v in COMPANIONS.get((module, option), {}).items()})
    args[option] = resolve(value, files)
    return args


def run_battery(module: str, baseline: dict[str, Any], files: dict[str, str], tmp_path: Path,
                env: dict[str, str] | None = None) -> list[str]:
    """Run every case of ``module`` in one playbook; return what went wrong, one line per case.

    The baseline runs first and must succeed without a change, so each case differs from a valid call
    by its one bad value.
    """
    all_cases = cases(module)
    playbook = tmp_path / f"{module}.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        f"    - name: bad input\n      k3sdaas.core.{module}: \"{{{{ item }}}}\"\n"
        "      loop: \"{{ battery_cases }}\"\n      loop_control:\n        label: case\n"
        "      ignore_errors: true\n"
    )
    variables = tmp_path / f"{module}.vars.json"  # a file: one -e argument is limited to 128 KiB
    arguments = [baseline] + [case_args(module, baseline, option, value, files) for option, value in all_cases]
    variables.write_text(json.dumps({"battery_cases": arguments}))
    run = run_playbook(playbook, "-e", f"@{variables}", local=True, timeout=1800,
                       env={"ANSIBLE_DISPLAY_TRACEBACK": "error", **(env or {})})
    problems = []
    if "Traceback" in run.stderr:
        problems.append(f"a traceback was printed: {run.stderr[-2000:]}")
    baseline_result, *results = next(result for _name, result in run.results())["results"]
    assert not baseline_result.get("failed") and not baseline_result.get("changed"), baseline_result
    assert len(results) == len(all_cases), run.output[-3000:]
    for (option, value), result in zip(all_cases, results, strict=True):
        shown = f"{module} {option}={str(value)[:40]!r}"
        msg = str(result.get("msg", ""))
        if not result.get("failed"):
            problems.append(f"{shown}: accepted (changed={result.get('changed')})")
        elif option not in msg:
            problems.append(f"{shown}: the message does not name the option: {msg[:200]}")
        if not deliberate(result):
            problems.append(f"{shown}: not a deliberate fail_json: {msg[:200]}")
    return problems


def deliberate(result: dict[str, Any]) -> bool:
    """Whether a failure is a module's own fail_json rather than an exception.

    With ANSIBLE_DISPLAY_TRACEBACK=error, ansible-core 2.19 attaches a traceback to every failure; for a
    deliberate one the module's part ends in the fail_json call followed by its message, while a raised
    (or caught and reported) exception shows the exception instead.
    """
    if "module_stderr" in result or str(result.get("msg", "")).startswith(("Unexpected error", "MODULE FAILURE")):
        return False
    module_part = str(result.get("exception", "")).split("\n\nThe above target exception")[0]
    return bool(re.search(r"fail_json\(.*\)\nMessage: ", module_part))


@pytest.fixture
def no_sui_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SUI_RPC_URL", "SUI_KEY_FILE", "SUI_PRIVATE_KEY", "SUI_CA_FILE", "K3SDAAS_PACKAGE_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.slow
@pytest.mark.parametrize("module", SUI_MODULES)
def test_sui_module_refuses_bad_values(module: str, chain: Chain, files: dict[str, str], tmp_path: Path,
                                       no_sui_env: None) -> None:
    baseline: dict[str, Any] = {
        "rpc_url": chain.node.url, "ca_file": str(chain.node.ca_path), "key_file": str(chain.key_file),
        "timeout": 10, "retries": 0, "package_id": chain.deployment.package_id,
        **{
            "sui_stake": {"node_id": chain.staked_node, "amount": 1},
            "seal_token": {"node_id": chain.staked_node},
            "sui_slash": {"node_id": chain.staked_node, "reason": chain.slash_reason},
            "sui_pool": {},
            "sui_publish": {},
        }[module],
    }
    before = chain.snapshot()
    with no_transaction_reaches(chain.node):
        problems = run_battery(module, baseline, files, tmp_path)
    assert not problems, "\n".join(problems)
    assert chain.snapshot() == before


@pytest.mark.slow
def test_nautilus_register_refuses_bad_values(chain: Chain, files: dict[str, str], tmp_path: Path,
                                              no_sui_env: None) -> None:
    pcrs = [bytes([index + 1]) * 48 for index in range(3)]

    async def configure() -> None:  # the registry holds the baseline's PCRs, so the baseline changes nothing
        async with ChainClient(chain.settings(), chain.deployment) as client:
            await client.update_pcrs(*pcrs)

    asyncio.run(configure())
    baseline = {"rpc_url": chain.node.url, "ca_file": str(chain.node.ca_path), "key_file": str(chain.key_file),
                "timeout": 10, "retries": 0, "package_id": chain.deployment.package_id,
                "pcrs": {f"PCR{index}": value.hex() for index, value in enumerate(pcrs)}}
    before = chain.snapshot()
    with no_transaction_reaches(chain.node):
        problems = run_battery("nautilus_register", baseline, files, tmp_path)
    assert not problems, "\n".join(problems)
    assert chain.snapshot() == before


@pytest.mark.slow
def test_nitro_enclave_refuses_bad_values(files: dict[str, str], tmp_path: Path) -> None:
    state = tmp_path / "sim"
    allocator = tmp_path / "allocator.yaml"
    allocator.write_text("memory_mib: 1024\ncpu_count: 2\n")
    eif = tmp_path / "battery.eif"
    baseline = {"state": "absent", "eif_path": str(eif), "nitro_cli": SIM, "allocator_file": str(allocator)}
    env = {"K3SDAAS_NITRO_SIM_STATE": str(state), "K3SDAAS_NITRO_SIM_ALLOCATOR": str(allocator)}
    problems = run_battery("nitro_enclave", baseline, files, tmp_path, env)
    assert not problems, "\n".join(problems)
    described = subprocess.run([*SIM, "describe-enclaves"], env={**os.environ, **env}, capture_output=True,
                               text=True, check=True)
    assert json.loads(described.stdout) == []
    assert not eif.exists()


@pytest.mark.slow
def test_ec2_enclave_instance_refuses_bad_values(ec2_endpoint: str, files: dict[str, str], tmp_path: Path) -> None:
    ec2 = boto3.client("ec2", endpoint_url=ec2_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    image = ec2.describe_images(Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"][0]["ImageId"]
    # absent, so the valid baseline changes nothing; every option is checked up front whatever the state
    baseline = {"state": "absent", "name": "battery", "cluster": "battery", "image_id": image,
                "instance_type": "m5.xlarge",
                "wait": False, "region": "us-east-1", "endpoint_url": ec2_endpoint, "access_key": "testing",
                "secret_key": "testing"}
    problems = run_battery("ec2_enclave_instance", baseline, files, tmp_path)
    assert not problems, "\n".join(problems)
    assert ec2.describe_instances()["Reservations"] == []


@pytest.fixture
def join_master(chain: Chain, tmp_path: Path) -> Iterator[tuple[harness.Master, harness.Chain, SimulatedPki]]:
    """A real master (tests/nautilus's harness) on this battery's Sui node, with a deployment of its own whose
    registry holds the simulated enclave's PCRs, the Kubernetes stand-in and a simulated NSM."""
    kit_chain = harness.Chain(chain.node, chain.operator, harness.publish(chain.node, chain.operator))

    async def register_pcrs() -> None:
        async with ChainClient(chain.settings(), kit_chain.deployment) as client:
            await client.update_pcrs(*harness.IMAGE_PCRS)

    asyncio.run(register_pcrs())
    kube = harness.start_kube(tmp_path / "kube")
    server, pki = harness.simulated_nsm(str(tmp_path / "nsm.sock"))
    found = re.search(r"server: (\S+)", (tmp_path / "kube" / "admin.kubeconfig").read_text())
    assert found
    try:
        with server:
            master = harness.start_master(tmp_path / "master", harness.master_settings(
                kit_chain, tmp_path / "kube", server.bound_address, tmp_path / "master",
                k3s={"supervisor_url": found.group(1)}))
            try:
                yield master, kit_chain, pki
            finally:
                master.stop()
    finally:
        kube.terminate()
        kube.wait(10)


def audit_paths(master: harness.Master) -> list[str]:
    time.sleep(0.5)  # the master flushes its audit log every 0.2 s
    return [json.loads(line)["path"] for line in (master.state / "audit.log").read_text().splitlines()]


@pytest.mark.slow
def test_k3s_join_refuses_bad_values(join_master: tuple[harness.Master, harness.Chain, SimulatedPki],
                                     files: dict[str, str], tmp_path: Path, no_sui_env: None) -> None:
    master, kit_chain, pki = join_master
    node = tmp_path / "node"
    signer, _ = ensure_node_key(node / "node.key")
    _, token = kit_chain.stake(1, owner=signer)
    (node / "root.pem").write_bytes(pki.root_pem())
    k3s = node / "k3s"  # an executable stand-in: the baseline leaves the service alone, k3s_binary cases manage it
    k3s.write_text("#!/bin/sh\n")
    k3s.chmod(0o755)
    # Every option set, so that each bad value replaces a good one; the PCRs come from the deployment's registry.
    baseline = {"master_url": master.url, "token_id": token.token_id, "node_id": token.node_id, "node_ip": "127.0.0.1",
                "key_file": str(node / "node.key"), "create_key": False, "sui_rpc_url": kit_chain.node.url,
                "sui_ca_file": str(kit_chain.node.ca_path), "package_id": kit_chain.deployment.package_id,
                "attestation_root": str(node / "root.pem"), "pool": "battery", "node_labels": {"k3sdaas.io/zone": "a"},
                "node_taints": ["k3sdaas.io/battery=yes:NoSchedule"], "config_dir": str(node / "etc"),
                "env_file": str(node / "k3s.env"), "k3s_binary": str(k3s), "service": "k3s-agent.service",
                "manage_service": False, "timeout": 10}
    playbook = tmp_path / "join.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False,
                                     "tasks": [{"k3sdaas.core.k3s_join": baseline}]}]))
    joined = run_playbook(playbook, local=True)
    assert joined.returncode == 0, joined.output[-3000:]
    written = {path: path.read_bytes() for path in (node / "etc" / "config.yaml", node / "k3s.env", node / "node.key")}
    seen = len(audit_paths(master))

    problems = run_battery("k3s_join", baseline, files, tmp_path)
    assert not problems, "\n".join(problems)
    assert {path: path.read_bytes() for path in written} == written
    assert "/api/v1/register-worker" not in audit_paths(master)[seen:]  # no new join token was asked for
    assert not (Path(files["@DIR@"]) / "config.yaml").exists()
