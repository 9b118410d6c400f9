"""The Sui modules through ansible-playbook against the node stand-in (no mocks)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.sui import no_transaction_reaches
from k3sdaas.chain import Signer
from k3sdaas_localnet.sui.testing import LocalNode

from .conftest import REPO, SUI, new_signer

PLAYBOOKS = REPO / "tests" / "playbooks"
LIFECYCLE = REPO / "playbooks" / "chain-lifecycle.yml"  # the user-facing playbook, run as users run it
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


def key_file(tmp_path: Path, signer: Signer) -> Path:
    path = tmp_path / "operator.key"
    path.write_text(signer.keystring)
    path.chmod(0o600)
    return path


def run_playbook(
    name: str | Path, node: LocalNode, key: Path, *options: str, **extra_vars: str,
) -> tuple[int, int, str]:
    """Run a playbook on localhost; return (changed, failed) from the recap and the output."""
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(REPO / "collections"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        SUI_RPC_URL=node.url,
        SUI_CA_FILE=str(node.ca_path),
        SUI_KEY_FILE=str(key),
    )
    env.pop("SUI_PRIVATE_KEY", None)
    command = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
               "-e", f"ansible_python_interpreter={sys.executable}", *options, str(PLAYBOOKS / name)]
    for key_name, value in extra_vars.items():
        command += ["-e", f"{key_name}={value}"]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    output = done.stdout + done.stderr
    recap = RECAP.search(output)
    assert recap, output
    return int(recap.group(2)), int(recap.group(4)), output


@pytest.mark.slow
def test_lifecycle_playbook_is_idempotent(node: LocalNode, build_output: Path, tmp_path: Path) -> None:
    operator = new_signer()
    node.faucet(operator.address, 100 * SUI)
    key = key_file(tmp_path, operator)
    changed, failed, output = run_playbook(LIFECYCLE, node, key, "--diff", k3sdaas_sui_build_output=str(build_output))
    assert failed == 0, output
    assert changed == 4, output  # publish, the stake loop, slash, unstake
    assert "+    tier_name: developer" in output  # the diff of a new stake
    changed, failed, output = run_playbook(LIFECYCLE, node, key, k3sdaas_sui_build_output=str(build_output))
    assert (changed, failed) == (0, 0), output
    assert "worker-c was unstaked before" in output
    assert operator.keystring not in output


@pytest.mark.slow
def test_errors_playbook(node: LocalNode, build_output: Path, tmp_path: Path) -> None:
    operator = new_signer()
    node.faucet(operator.address, 100 * SUI)
    _changed, failed, output = run_playbook("sui_errors.yml", node, key_file(tmp_path, operator),
                                            build_output=str(build_output), other_owner=new_signer().address)
    assert failed == 0, output
    assert operator.keystring not in output


@pytest.mark.slow
def test_check_mode_sends_nothing(node: LocalNode, build_output: Path, tmp_path: Path) -> None:
    operator = new_signer()
    node.faucet(operator.address, 10 * SUI)
    with no_transaction_reaches(node):
        changed, failed, output = run_playbook("sui_check_mode.yml", node, key_file(tmp_path, operator),
                                               build_output=str(build_output))
    assert (changed, failed) == (2, 0), output


@pytest.mark.slow
def test_check_mode_decides_as_the_real_run(node: LocalNode, build_output: Path, tmp_path: Path) -> None:
    operator = new_signer()
    node.faucet(operator.address, 100 * SUI)
    changed, failed, output = run_playbook("sui_check_mode_decides.yml", node, key_file(tmp_path, operator),
                                           build_output=str(build_output))
    assert failed == 0, output
    assert changed == 7, output  # publish, two stakes, two slashes, the pool and the unstake (both in check mode)
