"""Ansible's linear strategy, run through Mitogen when it is installed, as it is by scripts/setup.sh.

Mitogen keeps one Python per host for the whole play and sends it each task, instead of starting an
interpreter (and, over ``docker exec`` or SSH, a new process) for every task: a no-op ``copy`` on a local
host falls from about 0.8 s to 0.05 s. Where Mitogen is missing (an AWX execution environment built
without it) the plays run under Ansible's own linear strategy, unchanged.
"""

from __future__ import annotations

DOCUMENTATION = """
name: accelerated_linear
short_description: Ansible's linear strategy, through Mitogen when it is installed
description:
  - Runs tasks exactly as C(ansible.builtin.linear) does; when the C(mitogen) package is importable,
    its C(mitogen_linear) strategy carries them to the hosts.
"""

try:
    from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule
except ImportError:
    from ansible.plugins.strategy.linear import StrategyModule

__all__ = ["StrategyModule"]
