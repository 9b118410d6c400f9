"""The master of tests/k3s_join (a real `k3sdaas-nautilus serve`), with short sessions so re-authentication shows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from nautilus.conftest import (  # noqa: F401  # fixtures, used by name
    Master,
    chain,
    kube,
    kube_dir,
    make_master,
    nsm_socket,
)


@pytest.fixture(scope="module")
def master(make_master: Callable[..., Master], kube: Path) -> Master:  # noqa: F811
    return make_master(auth={"session_ttl": 6})
