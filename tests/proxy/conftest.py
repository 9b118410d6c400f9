"""The whole kubectl path for real: kubectl → k3sdaas-kubectl-auth (exec plugin) → the master's proxy (granian,
TLS) → the Kubernetes stand-in (impersonation and RBAC evaluated there), with seal tokens staked on a private
Sui node stand-in. The tier RBAC is applied as the master applies it (role nautilus_master's manifest).
"""

from __future__ import annotations

import os
import ssl
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kube.conftest import EDGES, KUBECTLS
from nautilus.conftest import (  # noqa: F401  (fixtures)
    REPO,
    Chain,
    Master,
    chain,
    kube,
    kube_dir,
    make_master,
    nsm_socket,
)

from helpers.rbac import DEVELOPER_LABEL, render_manifest
from k3sdaas.chain import Signer
from k3sdaas.nautilus.rbac import TierRbac

STAKES = {"viewer": 0.5, "developer": 2, "admin": 5}  # SUI, the minimum of each tier (chain.abi.TIERS)


@dataclass
class Identity:
    tier: str
    signer: Signer
    token_id: str
    key_file: Path


@dataclass
class Admin:
    """The stand-in's cluster-admin, straight to the API (no proxy)."""

    url: str
    token: str
    ca: Path

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        with httpx.Client(verify=ssl.create_default_context(cafile=str(self.ca)), timeout=20) as client:
            return client.request(method, self.url + path, json=body, headers={"Authorization": f"Bearer {self.token}"})

    def apply(self, obj: dict[str, Any]) -> None:
        group_version = obj["apiVersion"]
        base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        plural = {"Namespace": "namespaces", "ServiceAccount": "serviceaccounts", "ClusterRole": "clusterroles",
                  "ClusterRoleBinding": "clusterrolebindings", "RoleBinding": "rolebindings", "Pod": "pods",
                  "ConfigMap": "configmaps"}[obj["kind"]]
        namespace = obj["metadata"].get("namespace")
        path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
        response = self.call("POST", path, obj)
        assert response.status_code in (201, 409), response.text


@pytest.fixture(scope="module")
def admin(kube: Path) -> Admin:  # noqa: F811
    config = yaml.safe_load((kube / "admin.kubeconfig").read_text())
    return Admin(config["clusters"][0]["cluster"]["server"], config["users"][0]["user"]["token"], kube / "ca.pem")


@pytest.fixture(scope="module")
def cluster(admin: Admin, kube: Path, tmp_path_factory: pytest.TempPathFactory) -> Admin:  # noqa: F811
    """The tier RBAC as the master keeps it, with a developer namespace `dev`; a plain namespace `other`."""
    manifest = render_manifest(tmp_path_factory.mktemp("rbac") / "rbac.yaml", ["dev"])
    TierRbac(str(kube / "admin.kubeconfig"), manifest, DEVELOPER_LABEL, interval=1).sync()
    admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    for namespace in ("dev", "other"):
        admin.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": namespace},
                     "spec": {"containers": [{"name": "main", "image": "busybox"}]}})
    return admin


def key_file(directory: Path, signer: Signer) -> Path:
    path = directory / f"{signer.address[:12]}.key"
    path.write_text(signer.keystring)
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return path


@pytest.fixture(scope="module")
def identities(chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Identity]:  # noqa: F811
    keys = tmp_path_factory.mktemp("keys")
    found = {}
    for tier, amount in STAKES.items():
        signer, token = chain.stake(amount)
        assert token.tier_name == tier
        found[tier] = Identity(tier, signer, token.token_id, key_file(keys, signer))
    return found


@pytest.fixture(scope="module")
def plugin_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PATH directory with `k3sdaas-kubectl-auth` running this checkout (exec keeps kubectl its parent)."""
    directory = tmp_path_factory.mktemp("bin")
    script = directory / "k3sdaas-kubectl-auth"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} -m k3sdaas.kubectl_auth "$@"\n')
    script.chmod(0o755)
    return directory


@pytest.fixture(scope="module")
def proxied_master(make_master: Callable[..., Master], cluster: Admin) -> Master:  # noqa: F811
    return make_master()


@dataclass
class Kubectl:
    binary: str
    version: tuple[int, int]
    master: Master
    home: Path
    path: str

    def config(self, who: Identity) -> Path:
        api = "v1" if self.version >= (1, 22) else "v1beta1"
        response = self.master.client.get("/kubectl/config", params={"token_id": who.token_id,
                                                                     "key_file": str(who.key_file), "api_version": api})
        assert response.status_code == 200, response.text
        path = self.home / f"{who.tier}.kubeconfig"
        path.write_text(response.text)
        return path

    def __call__(self, who: Identity, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.binary, "--kubeconfig", str(self.config(who)), "--cache-dir",
                               str(self.home / "cache"), *args], capture_output=True, text=True, timeout=timeout,
                              check=False, env=self.env())

    def env(self) -> dict[str, str]:
        return {**os.environ, "PATH": f"{self.path}{os.pathsep}{os.environ['PATH']}", "HOME": str(self.home),
                "XDG_CACHE_HOME": str(self.home / "xdg")}


@pytest.fixture(params=EDGES or [pytest.param(None, marks=pytest.mark.skip(reason="no kubectl; run scripts/setup.sh"))],
                ids=lambda v: f"kubectl-{v[0]}.{v[1]}" if v else "none")
def kubectl(request: pytest.FixtureRequest, proxied_master: Master, plugin_bin: Path, tmp_path: Path) -> Kubectl:
    return Kubectl(KUBECTLS[request.param], request.param, proxied_master, tmp_path, str(plugin_bin))
