"""The resource types the stand-in serves, their discovery documents and their ``kubectl get`` columns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .store import parse_time

CRUD = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    name: str  # plural, as in URLs
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = tuple(CRUD)
    stored: bool = True  # False: create-only review objects, answered and never kept
    columns: tuple[tuple[str, str, Callable[[dict[str, Any]], Any]], ...] = field(default=(), compare=False)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


def _age(obj: dict[str, Any]) -> str:
    created = parse_time(obj.get("metadata", {}).get("creationTimestamp"))
    if created is None:
        return "<unknown>"
    seconds = int((dt.datetime.now(dt.UTC) - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size or (unit == "m" and seconds >= size):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions") or [] if c.get("type") == kind), {})


def node_status(obj: dict[str, Any]) -> str:
    status = "Ready" if _condition(obj, "Ready").get("status") == "True" else "NotReady"
    return status + (",SchedulingDisabled" if obj.get("spec", {}).get("unschedulable") else "")


def _node_roles(obj: dict[str, Any]) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = sorted(k[len(prefix):] for k in obj.get("metadata", {}).get("labels", {}) if k.startswith(prefix))
    return ",".join(roles) or "<none>"


def _kubelet_version(obj: dict[str, Any]) -> str:
    return str(obj.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", ""))


def _pod_ready(obj: dict[str, Any]) -> str:
    statuses = obj.get("status", {}).get("containerStatuses") or []
    total = len(obj.get("spec", {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_restarts(obj: dict[str, Any]) -> int:
    return sum(int(s.get("restartCount", 0)) for s in obj.get("status", {}).get("containerStatuses") or [])


def _deployment_ready(obj: dict[str, Any]) -> str:
    return f"{obj.get('status', {}).get('readyReplicas', 0)}/{obj.get('spec', {}).get('replicas', 1)}"


def _involved(obj: dict[str, Any]) -> str:
    ref = obj.get("involvedObject", {})
    return f"{ref.get('kind', '').lower()}/{ref.get('name', '')}"


_NAME: tuple[str, str, Callable[[dict[str, Any]], Any]] = ("Name", "string", lambda o: o["metadata"]["name"])
_AGE: tuple[str, str, Callable[[dict[str, Any]], Any]] = ("Age", "date", _age)

RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "Namespace", False, ("ns",), ("status",),
             columns=(_NAME, ("Status", "string", lambda o: o.get("status", {}).get("phase", "Active")), _AGE)),
    Resource("", "v1", "nodes", "Node", False, ("no",), ("status",),
             columns=(_NAME, ("Status", "string", node_status), ("Roles", "string", _node_roles), _AGE,
                      ("Version", "string", _kubelet_version))),
    Resource("", "v1", "pods", "Pod", True, ("po",), ("status", "log", "exec", "portforward", "attach", "eviction"),
             columns=(_NAME, ("Ready", "string", _pod_ready),
                      ("Status", "string", lambda o: o.get("status", {}).get("phase", "Pending")),
                      ("Restarts", "integer", _pod_restarts), _AGE,
                      ("Node", "string", lambda o: o.get("spec", {}).get("nodeName") or "<none>"))),
    Resource("", "v1", "configmaps", "ConfigMap", True, ("cm",),
             columns=(_NAME, ("Data", "integer", lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
                      _AGE)),
    Resource("", "v1", "secrets", "Secret", True,
             columns=(_NAME, ("Type", "string", lambda o: o.get("type", "Opaque")),
                      ("Data", "integer", lambda o: len(o.get("data") or {})), _AGE)),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",),
             columns=(_NAME, ("Secrets", "integer", lambda o: len(o.get("secrets") or [])), _AGE)),
    Resource("", "v1", "events", "Event", True, ("ev",),
             columns=(("Last Seen", "string", _age), ("Type", "string", lambda o: o.get("type", "")),
                      ("Reason", "string", lambda o: o.get("reason", "")), ("Object", "string", _involved),
                      ("Message", "string", lambda o: o.get("message", "")), _NAME)),
    Resource("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("status", "scale"),
             columns=(_NAME, ("Ready", "string", _deployment_ready),
                      ("Up-to-date", "integer", lambda o: o.get("status", {}).get("updatedReplicas", 0)),
                      ("Available", "integer", lambda o: o.get("status", {}).get("availableReplicas", 0)), _AGE)),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", True,
             columns=(_NAME, ("Holder", "string", lambda o: o.get("spec", {}).get("holderIdentity", "")), _AGE)),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False,
             verbs=("create",), stored=False),
    Resource("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", False,
             verbs=("create",), stored=False),
    # kubectl 1.26/1.27 `auth whoami` asks the beta and alpha versions
    *(Resource("authentication.k8s.io", version, "selfsubjectreviews", "SelfSubjectReview", False,
               verbs=("create",), stored=False) for version in ("v1", "v1beta1", "v1alpha1")),
)

BY_PATH = {(r.group, r.version, r.name): r for r in RESOURCES}
GROUP_VERSIONS = sorted({(r.group, r.version) for r in RESOURCES}, key=lambda gv: (gv[0] != "", gv))

SUBRESOURCE_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"], "log": ["get"],
                     "exec": ["create", "get"],
                     "portforward": ["create", "get"], "attach": ["create", "get"], "eviction": ["create"]}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    """The legacy discovery document of one group-version (``/api/v1``, ``/apis/<g>/<v>``)."""
    served = [r for r in RESOURCES if (r.group, r.version) == (group, version)]
    if not served:
        return None
    items: list[dict[str, Any]] = []
    for r in served:
        item = {"name": r.name, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                "verbs": list(r.verbs)}
        if r.short_names:
            item["shortNames"] = list(r.short_names)
        if r.kind in ("Pod", "Deployment"):
            item["categories"] = ["all"]  # `kubectl get all`
        items.append(item)
        for sub in r.subresources:
            items.append({"name": f"{r.name}/{sub}", "singularName": "", "namespaced": r.namespaced, "kind": r.kind,
                          "verbs": SUBRESOURCE_VERBS[sub]})
            if sub == "scale":
                items[-1].update(kind="Scale", group="autoscaling", version="v1")
            if sub == "eviction":
                items[-1].update(kind="Eviction", group="policy", version="v1")
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": served[0].group_version, "resources": items}


def api_groups() -> dict[str, Any]:
    groups = []
    for group in sorted({g for g, _ in GROUP_VERSIONS if g}):
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for g, v in GROUP_VERSIONS if g == group]
        groups.append({"name": group, "versions": versions, "preferredVersion": versions[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def table(resource: Resource, objects: list[dict[str, Any]], resource_version: str) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table, as kube-apiserver answers ``Accept: …;as=Table``."""
    columns = resource.columns or (_NAME, _AGE)
    rows = []
    for obj in objects:
        meta = obj.get("metadata", {})
        rows.append({"cells": [fn(obj) for _, _, fn in columns],
                     "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": [{"name": n, "type": t, "format": "name" if n == "Name" else "", "description": "",
                                   "priority": 0} for n, t, _ in columns],
            "rows": rows}
