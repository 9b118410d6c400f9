"""Every day-2 playbook checks its inputs first: a bad or missing one fails naming the variable, before any
transaction or any host is touched."""

from __future__ import annotations

from typing import Any

import pytest

from helpers.sui import no_transaction_reaches

from .conftest import Cluster

CASES = [
    ("rotate-seal-tokens", {"rotate_seal_tokens_within": "soon"}, "rotate_seal_tokens_within"),
    ("rotate-seal-tokens", {"rotate_seal_tokens_within": -1},
     "rotate_seal_tokens_within must be between 0 and 315360000 (got -1)"),
    ("slash-recovery", {"slash_recovery_tier": "root"}, "slash_recovery_tier"),
    ("slash-recovery", {"slash_recovery_rejoin": "perhaps"}, "slash_recovery_rejoin"),
    ("unstake", {}, "missing required arguments: unstake_nodes"),
    ("unstake", {"unstake_nodes": ["a"], "k3sdaas_kubeconfig": "/nonexistent/kubeconfig"},
     "k3sdaas_kubeconfig must be a kubeconfig file on the controller (got '/nonexistent/kubeconfig')"),
    ("unstake", {"unstake_nodes": ["a"], "unstake_drain_timeout": "long"}, "unstake_drain_timeout"),
    ("unstake", {"unstake_nodes": ["a"], "unstake_drain_timeout": 10**12},
     "unstake_drain_timeout must be between 1 and"),
    ("upgrade", {}, "missing required arguments: upgrade_k3s_version"),
    ("upgrade", {"upgrade_k3s_version": "v1.31.12+k3s1", "upgrade_ready_timeout": 0},
     "upgrade_ready_timeout must be between 1 and 3600 (got 0)"),
    ("4-system-integration-test", {"integration_audit_timeout": -5},
     "integration_audit_timeout must be between 1 and 3600"),
    ("upgrade", {"upgrade_k3s_version": "1.31"}, "upgrade_k3s_version must be a K3s release tag"),
    ("upgrade", {"upgrade_k3s_version": "v1.31.12+k3s1", "upgrade_nodes": ["nobody"]}, "(not: nobody)"),
    ("teardown", {"teardown_confirm": "maybe"}, "teardown_confirm"),
    ("teardown", {"k3sdaas_infrastructure": "gcp"}, "k3sdaas_infrastructure"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("playbook", "extra", "message"), CASES, ids=[f"{p}-{m[:30]}" for p, _, m in CASES])
def test_bad_input_fails_naming_the_variable(cluster: Cluster, playbook: str, extra: dict[str, Any],
                                             message: str) -> None:
    with no_transaction_reaches(cluster.node, reads=False):
        run = cluster.run(playbook, **extra)
    assert run.returncode != 0
    failure = run.first_failure()
    assert failure is not None and message in failure["msg"], run.output
