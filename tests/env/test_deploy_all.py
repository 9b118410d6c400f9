"""playbooks/deploy-all.yml refuses a bad inventory before it touches anything; the whole deployment and its
second run are molecule/e2e (molecule test -s e2e)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from helpers.playbook import run_playbook

if TYPE_CHECKING:  # the fixture's class; pytest's importlib mode cannot import conftest at run time
    from conftest import EnvTools

pytestmark = pytest.mark.docker


def test_deploy_refuses_an_unknown_infrastructure(env_tools: EnvTools) -> None:
    result = run_playbook("playbooks/deploy-all.yml", extra_vars={"k3sdaas_infrastructure": "gcp"}, json_report=False)
    assert result.returncode != 0
    assert "k3sdaas_infrastructure must be 'local' or 'aws'" in result.stdout
