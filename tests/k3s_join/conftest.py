"""A real master (`k3sdaas-nautilus serve` in a subprocess) against a private Sui node, the Kubernetes stand-in
and a simulated NSM: the fixtures of tests/nautilus, reused as they are. The master's K3s supervisor URL is
the Kubernetes stand-in's API, which the stand-in K3s agent joins."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from nautilus.conftest import (  # noqa: F401  # fixtures, used by name
    IMAGE_PCRS,
    Chain,
    Master,
    chain,
    kube,
    kube_dir,
    make_master,
    nsm_socket,
)


@pytest.fixture(scope="module")
def kube_url(kube: Path) -> str:  # noqa: F811
    found = re.search(r"server: (\S+)", (kube / "admin.kubeconfig").read_text())
    assert found
    return found.group(1)


@pytest.fixture(scope="module")
def master(make_master: Callable[..., Master], kube_url: str) -> Master:  # noqa: F811
    return make_master(k3s={"supervisor_url": kube_url})
