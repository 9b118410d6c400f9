"""What kube-apiserver's admission, defaulting and built-in controllers add to a write, and the bootstrap policy.

The bootstrap policy is the subset of kube-apiserver's default RBAC objects clients rely on
(cluster-admin for system:masters, discovery, self reviews), plus ``system:node`` bound to the groups
K3s agents run as: the join token is exchanged for a kubelet credential (user ``system:node:<name>``,
group ``system:nodes``) at ``/v1-k3s/client-kubelet.crt``. The binding also names the join tokens' group, a
simplification of the stand-in (real bootstrappers may only ask for certificates).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

from . import errors
from .auth import NodePasswords
from .errors import ApiError
from .resources import Resource
from .selectors import labels_match_selector
from .store import Store

RBAC = "rbac.authorization.k8s.io"
MAX_REPLICAS = 500
NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
DISCOVERY_URLS = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz",
                  "/version", "/version/"]
CLUSTER_ROLES: dict[str, list[dict[str, Any]]] = {
    "cluster-admin": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                      {"nonResourceURLs": ["*"], "verbs": ["*"]}],
    "system:discovery": [{"nonResourceURLs": DISCOVERY_URLS, "verbs": ["get"]}],
    "system:public-info-viewer": [{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                                   "verbs": ["get"]}],
    "system:basic-user": [
        {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
         "verbs": ["create"]},
        {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}],
    "system:node": [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["create", "get", "list", "watch", "patch", "update"]},
        {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch", "update"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch", "update"]},
        {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch", "update"]},
        {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "verbs": ["create", "delete", "get", "patch", "update"]}],
}
CLUSTER_ROLE_BINDINGS = {
    "cluster-admin": ("cluster-admin", ["system:masters"]),
    "system:discovery": ("system:discovery", ["system:authenticated"]),
    "system:public-info-viewer": ("system:public-info-viewer", ["system:authenticated", "system:unauthenticated"]),
    "system:basic-user": ("system:basic-user", ["system:authenticated"]),
    "k3sdaas-localnet:nodes": ("system:node", ["system:nodes", "system:bootstrappers:k3s:default-node-token"]),
}
DEFAULTS_LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}


def seed(store: Store) -> None:
    """Create what a fresh cluster has; existing objects (maybe edited) are left alone."""
    for name in NAMESPACES:
        if store.get("/namespaces", "", name) is None:
            namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                         "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
            after_create_namespace(store.create("/namespaces", namespace), store)
    for name, rules in CLUSTER_ROLES.items():
        if store.get(f"{RBAC}/clusterroles", "", name) is None:
            store.create(f"{RBAC}/clusterroles", {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "rules": rules,
                                                  "metadata": {"name": name, "labels": dict(DEFAULTS_LABEL)}})
    for name, (role, groups) in CLUSTER_ROLE_BINDINGS.items():
        if store.get(f"{RBAC}/clusterrolebindings", "", name) is None:
            store.create(f"{RBAC}/clusterrolebindings", {
                "apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": name, "labels": dict(DEFAULTS_LABEL)},
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
                "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": g} for g in groups]})


# JSON types of the fields the controllers, the scheduler, RBAC and the table columns read; kube-apiserver
# refuses a wrongly typed field while decoding, so a write carrying one is refused here (422).
OBJECT, STRING, INT, BOOL, STRINGS, STRING_MAP, OBJECTS = (
    "object", "string", "integer", "boolean", "list of strings", "map of strings", "list of objects")
_RULES = {"rules": OBJECTS, "rules[].verbs": STRINGS, "rules[].apiGroups": STRINGS, "rules[].resources": STRINGS,
          "rules[].resourceNames": STRINGS, "rules[].nonResourceURLs": STRINGS}
_BINDING = {"roleRef": OBJECT, "roleRef.kind": STRING, "roleRef.name": STRING, "subjects": OBJECTS,
            "subjects[].kind": STRING, "subjects[].name": STRING, "subjects[].namespace": STRING}
SHAPES: dict[str, dict[str, str]] = {
    "*": {"spec": OBJECT, "status": OBJECT, "metadata.ownerReferences": OBJECTS, "metadata.finalizers": STRINGS,
          "metadata.generateName": STRING, "metadata.resourceVersion": STRING},
    "Node": {"spec.taints": OBJECTS, "spec.unschedulable": BOOL, "status.conditions": OBJECTS,
             "status.addresses": OBJECTS, "status.nodeInfo": OBJECT},
    "Pod": {"spec.nodeName": STRING, "spec.tolerations": OBJECTS, "spec.nodeSelector": STRING_MAP,
            "status.conditions": OBJECTS, "status.containerStatuses": OBJECTS, "status.phase": STRING},
    "Deployment": {"spec.replicas": INT, "spec.selector": OBJECT, "spec.selector.matchLabels": STRING_MAP,
                   "spec.selector.matchExpressions": OBJECTS, "spec.template": OBJECT, "spec.template.metadata": OBJECT,
                   "spec.template.metadata.labels": STRING_MAP, "spec.template.spec": OBJECT},
    "Lease": {"spec.holderIdentity": STRING, "spec.renewTime": STRING, "spec.leaseDurationSeconds": INT},
    "ConfigMap": {"data": STRING_MAP, "binaryData": STRING_MAP},
    "Secret": {"data": STRING_MAP, "stringData": STRING_MAP, "type": STRING},
    "Event": {"involvedObject": OBJECT},
    "Role": _RULES,
    "ClusterRole": {**_RULES, "aggregationRule": OBJECT, "aggregationRule.clusterRoleSelectors": OBJECTS},
    "RoleBinding": _BINDING,
    "ClusterRoleBinding": _BINDING,
}
_CHECKS = {
    OBJECT: lambda v: isinstance(v, dict), STRING: lambda v: isinstance(v, str),
    INT: lambda v: isinstance(v, int) and not isinstance(v, bool), BOOL: lambda v: isinstance(v, bool),
    STRINGS: lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
    STRING_MAP: lambda v: isinstance(v, dict) and all(isinstance(i, str) for i in v.values()),
    OBJECTS: lambda v: isinstance(v, list) and all(isinstance(i, dict) for i in v),
}


def _values(obj: Any, path: str) -> list[tuple[str, Any]]:
    """(field path, value) of every value at ``path``; ``a[].b`` walks the items of list ``a``."""
    found = [("", obj)]
    for part in path.split("."):
        many = part.endswith("[]")
        name = part.removesuffix("[]")
        step = []
        for where, value in found:
            if isinstance(value, dict) and value.get(name) is not None:
                child = value[name]
                if many and isinstance(child, list):
                    step += [(f"{where}{name}[{i}].", item) for i, item in enumerate(child)]
                else:
                    step.append((f"{where}{name}.", child))
        found = step
    return [(where.rstrip("."), value) for where, value in found]


def check_shape(resource: Resource, obj: dict[str, Any]) -> None:
    for path, expected in {**SHAPES["*"], **SHAPES.get(resource.kind, {})}.items():
        for where, value in _values(obj, path):
            if not _CHECKS[expected](value):
                raise errors.invalid(resource, str(obj["metadata"].get("name", "")),
                                     [(where, f"Invalid value: must be a {expected}")])


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def prepare(resource: Resource, obj: dict[str, Any], store: Store, ca_pem: bytes) -> None:
    """Defaulting and validation of one object about to be written; ApiError when it is invalid."""
    check_shape(resource, obj)
    name = obj["metadata"].get("name", "")
    if resource.kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
    elif resource.kind == "Secret":
        data = obj.get("data") or {}
        string_data = obj.pop("stringData", None) or {}
        for key, value in data.items():
            try:
                base64.b64decode(value, validate=True)
            except binascii.Error:
                raise ApiError(400, f"the value of data[{key!r}] is not valid base64") from None
        data.update({k: _b64(v) for k, v in string_data.items()})
        obj["data"] = data
        obj.setdefault("type", "Opaque")
        if obj["type"] == "kubernetes.io/service-account-token":
            account = obj["metadata"].get("annotations", {}).get("kubernetes.io/service-account.name")
            if not account:
                raise errors.invalid(resource, name, [("metadata.annotations[kubernetes.io/service-account.name]",
                                                       "Required value")])
            data.setdefault("token", _b64(secrets.token_urlsafe(48)))  # the token controller's job
            data["ca.crt"] = base64.b64encode(ca_pem).decode()
            data["namespace"] = _b64(obj["metadata"]["namespace"])
    elif resource.kind == "Pod":
        _check_containers(resource, name, obj.get("spec", {}).get("containers"), "spec.containers")
        obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})
    elif resource.kind == "Deployment":
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            raise errors.invalid(resource, name, [("spec", "Required value")])
        spec.setdefault("replicas", 1)
        if not 0 <= spec["replicas"] <= MAX_REPLICAS:  # a bound of the stand-in, which keeps every pod in SQLite
            raise errors.invalid(resource, name, [("spec.replicas", f"Invalid value: {spec['replicas']}: must be "
                                                   f"between 0 and {MAX_REPLICAS} in this stand-in")])
        selector = spec.get("selector")
        labels = (spec.get("template") or {}).get("metadata", {}).get("labels")
        if not isinstance(selector, dict) or not selector:
            raise errors.invalid(resource, name, [("spec.selector", "Required value")])
        if not labels_match_selector(labels, selector):
            raise errors.invalid(resource, name, [("spec.template.metadata.labels",
                                                   "Invalid value: `selector` does not match template `labels`")])
        _check_containers(resource, name, spec.get("template", {}).get("spec", {}).get("containers"),
                          "spec.template.spec.containers")
        spec.setdefault("strategy", {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        obj.setdefault("status", {})


def _check_containers(resource: Resource, name: str, containers: Any, field: str) -> None:
    if not isinstance(containers, list) or not containers:
        raise errors.invalid(resource, name, [(field, "Required value")])
    for i, container in enumerate(containers):
        if not isinstance(container, dict) or not isinstance(container.get("name"), str) or not container["name"] \
                or not isinstance(container.get("image"), str) or not container["image"]:
            raise errors.invalid(resource, name, [(f"{field}[{i}]", "Required value: name and image")])


def after_create(resource: Resource, obj: dict[str, Any], store: Store) -> None:
    if resource.kind == "Namespace":
        after_create_namespace(obj, store)


def after_create_namespace(namespace: dict[str, Any], store: Store) -> None:
    """The service-account controller's "default" account."""
    name = namespace["metadata"]["name"]
    if store.get("/serviceaccounts", name, "default") is None:
        store.create("/serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                          "metadata": {"name": "default", "namespace": name}})


def after_delete(resource: Resource, obj: dict[str, Any], store: Store) -> None:
    """A deleted namespace takes its objects along (at once: the stand-in has no Terminating phase). A deleted
    Node takes its password Secret along, as K3s's node controller does, so a new machine of that name can join."""
    if resource.kind == "Namespace":
        for key, name in store.namespaced_resources(obj["metadata"]["name"]):
            store.delete(key, obj["metadata"]["name"], name)
    elif resource.kind == "Node":
        store.delete("/secrets", "kube-system", NodePasswords.secret_name(obj["metadata"]["name"]))


