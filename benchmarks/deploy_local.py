"""Wall time of the whole deployment on the local default, from nothing, against its own second run.

Usage: .venv/bin/python benchmarks/deploy_local.py [--keep-hosts] [--upgrade-version V]

1. ``scripts/setup.sh`` (timed apart: it is the machine's preparation, not the deployment);
2. teardown of any earlier deployment (``playbooks/teardown.yml`` with ``teardown_confirm`` and
   ``teardown_unstake``, so the workers' tokens go with their keys), not timed;
3. ``playbooks/deploy-all.yml`` from nothing (target: at most 6 minutes with 2 workers);
4. the same again (target: at most 35 % of the first, every host ``changed=0``);
5. ``playbooks/upgrade.yml`` for one worker (``--limit`` to it), timed, unless ``--upgrade-version`` is empty.
The figures are printed together, with the baseline (the first run) beside the others.

Last measured (2026-12-02, this 2-core machine, Mitogen strategy, Docker images of earlier runs kept): setup
1.5 s apart; from nothing 143.3 s; again 45.2 s = 32 %, changed=0 on every host; upgrade of one worker 27.7 s.
Under Ansible's own linear strategy (ANSIBLE_STRATEGY=linear) the two runs took 237.6 s and 139.4 s (59 %).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
RECAP = re.compile(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


def run(*command: str, timeout: float = 3600) -> tuple[float, str]:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"), "ANSIBLE_NOCOLOR": "1"}
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def changed(output: str) -> dict[str, int]:
    return {host: int(count) for host, count, _, _ in RECAP.findall(output)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep-hosts", action="store_true", help="do not tear an existing deployment down first")
    parser.add_argument("--upgrade-version", default="v1.32.8+k3s1", help="K3s version for the upgrade run")
    args = parser.parse_args()
    setup, _ = run("bash", "scripts/setup.sh")
    if not args.keep_hosts:
        run(str(VENV_BIN / "ansible-playbook"), "playbooks/teardown.yml", "-e", "teardown_confirm=true",
            "-e", "teardown_unstake=true")
        shutil.rmtree(REPO / ".state" / "deploy", ignore_errors=True)
    first, first_out = run(str(VENV_BIN / "ansible-playbook"), "playbooks/deploy-all.yml")
    second, second_out = run(str(VENV_BIN / "ansible-playbook"), "playbooks/deploy-all.yml")
    upgrade = None
    if args.upgrade_version:
        upgrade, _ = run(str(VENV_BIN / "ansible-playbook"), "playbooks/upgrade.yml",
                         "--limit", "localhost,k3sdaas-master-1,k3sdaas-worker-1",
                         "-e", f"upgrade_k3s_version={args.upgrade_version}")
    second_changed = changed(second_out)
    print(f"setup (apart)                      {setup:7.1f} s")
    print(f"deploy-all from nothing (baseline) {first:7.1f} s   target <= 360 s: {'met' if first <= 360 else 'MISSED'}"
          f"   changed per host {changed(first_out)}")
    print(f"deploy-all again                   {second:7.1f} s   = {second / first:.0%} of the first, target <= 35 %: "
          f"{'met' if second <= 0.35 * first else 'MISSED'}   changed per host {second_changed}")
    if upgrade is not None:
        print(f"upgrade.yml, one worker            {upgrade:7.1f} s   = {upgrade / first:.0%} of the first")
    return 0 if not any(second_changed.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
