"""Checks against the local Sui node stand-in's own request log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from k3sdaas_localnet.sui.server import RPC_LOG_SIZE
from k3sdaas_localnet.sui.testing import LocalNode

EXECUTE = "ExecuteTransaction"


@contextmanager
def no_transaction_reaches(node: LocalNode, *, reads: bool = True) -> Iterator[None]:
    """Fail if the block executed a transaction on ``node``, judged from the node's own request log.

    With ``reads`` the block must have read from the node, which proves the log saw its calls; without,
    nothing at all may reach the node (validation that happens before any request).
    """
    before = node.service_log()
    assert len(before) < RPC_LOG_SIZE, "the node's request log is full: new calls cannot be told apart"
    yield
    calls = node.service_log()[len(before):]
    executed = [(path, status) for path, status in calls if path.rsplit("/", 1)[-1] == EXECUTE]
    assert not executed, f"transactions reached the node: {executed}"
    if reads:
        assert calls, "nothing reached the node, so the check proves nothing"
    else:
        assert not calls, f"requests reached the node: {calls}"
