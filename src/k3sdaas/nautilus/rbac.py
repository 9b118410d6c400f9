"""The tier RBAC, kept by the master with its own Kubernetes credential.

The image carries a manifest (role ``nautilus_master`` renders it): the ClusterRoles and bindings of the tier
groups the proxy impersonates and the developer namespaces. The master applies it at start (server-side apply,
so a second start changes nothing) and keeps a ``k3sdaas:developer`` RoleBinding in every namespace with the
developer label, removing it from one that loses the label. Inside the enclave the objects are measured with the
image and no controller needs an administrator's kubeconfig; the same code runs against K3s and the stand-in.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from ..errors import InvalidInput, Unavailable
from .kube import api_client

log = logging.getLogger(__name__)

MAX_MANIFEST_BYTES = 1 << 20
RBAC = "/apis/rbac.authorization.k8s.io/v1"
KINDS = {  # kind -> (API path, resource, namespaced): what a tier manifest may hold
    "Namespace": ("/api/v1", "namespaces", False),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "ClusterRole": (RBAC, "clusterroles", False),
    "ClusterRoleBinding": (RBAC, "clusterrolebindings", False),
    "RoleBinding": (RBAC, "rolebindings", True),
}
FIELD_MANAGER = "k3sdaas-nautilus"
MANAGED = {"app.kubernetes.io/managed-by": "k3sdaas", "app.kubernetes.io/part-of": "k3sdaas"}
DEVELOPER = "k3sdaas:developer"
LABEL = re.compile(r"^[A-Za-z0-9./_-]{1,316}=[A-Za-z0-9._-]{0,63}$")
NAME = re.compile(r"^[a-z0-9]([-a-z0-9.:]{0,251}[a-z0-9])?$")


def load_manifest(path: str) -> list[dict[str, Any]]:
    """The manifest's objects, each of a kind in KINDS with a name (and a namespace where the kind has one)."""
    try:
        if Path(path).stat().st_size > MAX_MANIFEST_BYTES:
            raise InvalidInput(f"setting rbac_manifest {path!r} is larger than {MAX_MANIFEST_BYTES} bytes",
                               field="rbac_manifest")
        documents = list(yaml.safe_load_all(Path(path).read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"setting rbac_manifest {path!r} cannot be read: {exc.__class__.__name__}",
                           field="rbac_manifest") from None
    objects = [doc for doc in documents if doc is not None]
    for number, obj in enumerate(objects, 1):
        kind = obj.get("kind") if isinstance(obj, dict) else None
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        namespaced = KINDS.get(str(kind), ("", "", False))[2]
        if (kind not in KINDS or not isinstance(meta, dict) or not NAME.match(str(meta.get("name", "")))
                or namespaced != bool(meta.get("namespace"))):
            raise InvalidInput(f"setting rbac_manifest {path!r}: object {number} must be a named "
                               f"{', '.join(KINDS)} (namespaced ones with a namespace)", field="rbac_manifest")
    return objects


def developer_binding(namespace: str) -> dict[str, Any]:
    group = {"apiGroup": "rbac.authorization.k8s.io"}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": DEVELOPER, "namespace": namespace, "labels": MANAGED},
            "roleRef": {**group, "kind": "ClusterRole", "name": DEVELOPER},
            "subjects": [{**group, "kind": "Group", "name": DEVELOPER}]}


def object_path(obj: dict[str, Any]) -> str:
    prefix, resource, namespaced = KINDS[obj["kind"]]
    meta = obj["metadata"]
    where = f"/namespaces/{meta['namespace']}" if namespaced else ""
    return f"{prefix}{where}/{resource}/{meta['name']}"


class TierRbac:
    """Settings as config.validate checked them (the label a key=value selector, the manifest loadable)."""

    def __init__(self, kubeconfig: str, manifest: str, developer_label: str, interval: float) -> None:
        self.kubeconfig = kubeconfig
        self.objects = load_manifest(manifest) if manifest else []
        self.developer_label = developer_label
        self.interval = interval
        self.applied = False  # the manifest, once; the developer bindings are kept after it
        self.synced = False  # once everything was as it should be
        self.error: str | None = ("the tier RBAC has not been applied yet" if manifest else
                                  "no tier RBAC manifest is configured (rbac.manifest)")
        self._api: Any = None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, **query: str) -> Any:
        if self._api is None:
            self._api = api_client(self.kubeconfig)
        headers = {"Accept": "application/json"}
        if body is not None:  # server-side apply; JSON is YAML
            headers["Content-Type"] = "application/apply-patch+yaml"
            query.update(fieldManager=FIELD_MANAGER, force="true")
        try:
            request = self._api.param_serialize(method, path, query_params=list(query.items()), header_params=headers,
                                                body=None if body is None else json.dumps(body),
                                                auth_settings=["BearerToken"])
            response = self._api.call_api(*request, _request_timeout=30)
            data = response.read()
        except Exception as exc:  # noqa: BLE001  (urllib3's MaxRetryError and friends are not OSErrors)
            raise Unavailable(f"Kubernetes API unreachable: {exc.__class__.__name__}") from None
        if not 200 <= response.status <= 299:
            raise Unavailable(f"Kubernetes API refused {method} {path}: {response.status} {response.reason}")
        try:
            return json.loads(data or b"{}")
        except ValueError:
            raise Unavailable(f"Kubernetes API answered {method} {path} with something else than JSON") from None

    def _apply(self, obj: dict[str, Any]) -> None:
        self._call("PATCH", object_path(obj), obj)

    def sync(self) -> None:
        """Apply the manifest (until it was once), then bind the developers where the label says."""
        if not self.applied:
            for obj in self.objects:
                self._apply(obj)
            self.applied = True
            log.info("tier RBAC applied: %d objects", len(self.objects))
        labelled = self._call("GET", "/api/v1/namespaces", labelSelector=self.developer_label)
        wanted = {item["metadata"]["name"] for item in labelled.get("items", [])}
        managed = self._call("GET", f"{RBAC}/rolebindings", labelSelector="app.kubernetes.io/managed-by=k3sdaas")
        bound = {item["metadata"]["namespace"] for item in managed.get("items", [])
                 if item["metadata"]["name"] == DEVELOPER}
        for namespace in sorted(wanted - bound):
            self._apply(developer_binding(namespace))
            log.info("developers bound in namespace %s", namespace)
        for namespace in sorted(bound - wanted):
            self._call("DELETE", object_path(developer_binding(namespace)))
            log.info("developers unbound in namespace %s (no longer labelled)", namespace)

    async def keep_forever(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.sync)
                self.synced, self.error = True, None
            except (Unavailable, KeyError, TypeError, AttributeError) as exc:  # the last three: an odd answer
                error = str(exc) if isinstance(exc, Unavailable) else f"unexpected answer: {exc.__class__.__name__}"
                if error != self.error:
                    log.warning("tier RBAC: %s", error)
                self.synced, self.error = False, error
            await asyncio.sleep(self.interval)
