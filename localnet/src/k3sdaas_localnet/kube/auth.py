"""Who is asking (authenticator chain, impersonation) and may they (RBAC over the stored objects).

The evaluation follows kube-apiserver: plugin/pkg/auth/authorizer/rbac/rbac.go and
pkg/apis/rbac/v1/evaluation_helpers.go for rules, pkg/endpoints/filters/impersonation.go for
``Impersonate-*`` headers, and the Forbidden texts of apiserver's responsewriters.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .selectors import labels_match_selector
from .store import Store, parse_time

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
BOOTSTRAP_TOKEN = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        info: dict[str, Any] = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            info["uid"] = self.uid
        if self.extra:
            info["extra"] = {k: list(v) for k, v in self.extra.items()}
        return info


@dataclass(frozen=True)
class Attributes:
    """What one request does, as apiserver's RequestInfo resolves it."""

    user: UserInfo
    verb: str
    resource_request: bool = True
    namespace: str = ""
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""

    def forbidden_message(self) -> str:
        if not self.resource_request:
            return f'User "{self.user.name}" cannot {self.verb} path "{self.path}"'
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        where = f'in the namespace "{self.namespace}"' if self.namespace else "at the cluster scope"
        return (f'User "{self.user.name}" cannot {self.verb} resource "{resource}" in API group "{self.api_group}" '
                f"{where}")


class Authenticator(Protocol):
    """One link of the chain: the user a bearer token stands for, or None when it is not this link's."""

    def authenticate(self, token: str) -> UserInfo | None: ...


class StaticToken:
    def __init__(self, token: str, user: UserInfo) -> None:
        self.token, self.user = token, user

    def authenticate(self, token: str) -> UserInfo | None:
        return self.user if hmac.compare_digest(token.encode(), self.token.encode()) else None


def _secret_field(secret: dict[str, Any], key: str) -> str:
    try:
        return base64.b64decode(secret.get("data", {}).get(key, "")).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


class BootstrapTokens:
    """``<id>.<secret>`` against ``kube-system/bootstrap-token-<id>`` (k8s.io/cluster-bootstrap rules)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def authenticate(self, token: str) -> UserInfo | None:
        match = BOOTSTRAP_TOKEN.match(token)
        if match is None:
            return None
        token_id, token_secret = match.groups()
        secret = self.store.get("/secrets", "kube-system", f"bootstrap-token-{token_id}")
        if secret is None or secret.get("type") != "bootstrap.kubernetes.io/token":
            return None
        if _secret_field(secret, "token-id") != token_id or not hmac.compare_digest(
                _secret_field(secret, "token-secret").encode(), token_secret.encode()):
            return None
        if _secret_field(secret, "usage-bootstrap-authentication") != "true":
            return None
        expiration = _secret_field(secret, "expiration")
        if expiration:
            expires = parse_time(expiration)
            if expires is None or expires <= dt.datetime.now(dt.UTC):
                return None
        extra = [g.strip() for g in _secret_field(secret, "auth-extra-groups").split(",") if g.strip()]
        if any(not g.startswith("system:bootstrappers:") for g in extra):
            return None
        return UserInfo(f"system:bootstrap:{token_id}", groups=("system:bootstrappers", *extra, AUTHENTICATED))


class ServiceAccountTokens:
    """Legacy ``kubernetes.io/service-account-token`` Secrets, whose ``data.token`` the stand-in fills."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def authenticate(self, token: str) -> UserInfo | None:
        for secret in self.store.objects("/secrets"):
            if secret.get("type") != "kubernetes.io/service-account-token":
                continue
            stored = _secret_field(secret, "token")
            if stored and hmac.compare_digest(stored.encode(), token.encode()):
                namespace = secret["metadata"]["namespace"]
                name = secret["metadata"].get("annotations", {}).get("kubernetes.io/service-account.name", "")
                if self.store.get("/serviceaccounts", namespace, name) is None:
                    return None
                return service_account_user(namespace, name)
        return None


NODE_PREFIX = "system:node:"
NODES = "system:nodes"
NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
MAX_NODE_PASSWORD = 256


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)


class NodePasswords:
    """K3s's node passwords: the supervisor keeps ``kube-system/<node>.node-password.k3s`` (a scrypt hash of the
    ``k3s-Node-Password`` the agent sent at its first join) and refuses another password for that node.

    The real kubelet then authenticates with the client certificate issued at join; the stand-in's HTTP server
    cannot read client certificates, so its kubelet sends Basic ``<node>:<password>`` (RFC 7617 user ids have no
    colon), which this checks the same way and takes for ``system:node:<node>``. Either way a node outlives its
    bootstrap token."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def secret_name(node: str) -> str:
        return f"{node}.node-password.k3s"

    def matches(self, node: str, password: str) -> bool | None:
        """None when the node has no password yet."""
        secret = self.store.get("/secrets", "kube-system", self.secret_name(node))
        if secret is None:
            return None
        salt, _, digest = _secret_field(secret, "hash").partition("$")
        try:
            expected = bytes.fromhex(digest)
            return hmac.compare_digest(_scrypt(password, bytes.fromhex(salt)), expected)
        except ValueError:
            return False

    def enroll(self, node: str, password: str) -> bool:
        """Keep the first password of a node; False when another one is given."""
        known = self.matches(node, password)
        if known is None:
            salt = os.urandom(16)
            stored = f"{salt.hex()}${_scrypt(password, salt).hex()}"
            self.store.create("/secrets", {
                "apiVersion": "v1", "kind": "Secret", "type": "k3s.cattle.io/node-password", "immutable": True,
                "metadata": {"name": self.secret_name(node), "namespace": "kube-system"},
                "data": {"hash": base64.b64encode(stored.encode()).decode()}})
            return True
        return known

    def authenticate_basic(self, node: str, password: str) -> UserInfo | None:
        if not NODE_NAME.match(node) or len(password) > MAX_NODE_PASSWORD or not self.matches(node, password):
            return None
        return UserInfo(f"{NODE_PREFIX}{node}", groups=(NODES, AUTHENTICATED))


def service_account_user(namespace: str, name: str, uid: str = "") -> UserInfo:
    return UserInfo(f"{SA_PREFIX}{namespace}:{name}", uid,
                    ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED))


def authenticate(chain: Sequence[Authenticator], token: str) -> UserInfo | None:
    for link in chain:
        user = link.authenticate(token)
        if user is not None:
            return user
    return None


class Forbidden(Exception):
    def __init__(self, attributes: Attributes) -> None:
        super().__init__(attributes.forbidden_message())
        self.attributes = attributes


class BadImpersonation(ValueError):
    pass


def impersonate(requester: UserInfo, headers: Iterable[tuple[str, str]], rbac: Rbac) -> UserInfo:
    """The user the request acts as; Forbidden names the first item the requester may not impersonate."""
    user_name: str | None = None
    uid: str | None = None
    groups: list[str] = []
    extra: dict[str, list[str]] = {}
    for raw_key, value in headers:
        key = raw_key.lower()
        if key == "impersonate-user":
            user_name = value
        elif key == "impersonate-uid":
            uid = value
        elif key == "impersonate-group":
            groups.append(value)
        elif key.startswith("impersonate-extra-"):
            extra.setdefault(urllib.parse.unquote(key[len("impersonate-extra-"):]), []).append(value)
    if user_name is None:
        if uid is not None or groups or extra:
            raise BadImpersonation("requested impersonation of groups, a UID or extras without impersonating a user")
        return requester
    checks = []
    if user_name.startswith(SA_PREFIX) and user_name.count(":") == 3:
        namespace, name = user_name[len(SA_PREFIX):].split(":")
        checks.append(Attributes(requester, "impersonate", namespace=namespace, resource="serviceaccounts", name=name))
        default_groups = list(service_account_user(namespace, name).groups)
    else:
        checks.append(Attributes(requester, "impersonate", resource="users", name=user_name))
        default_groups = [AUTHENTICATED] if user_name != "system:anonymous" else ["system:unauthenticated"]
    checks += [Attributes(requester, "impersonate", resource="groups", name=g) for g in groups]
    checks += [Attributes(requester, "impersonate", api_group="authentication.k8s.io", resource="userextras",
                          subresource=k, name=v) for k, values in extra.items() for v in values]
    if uid is not None:
        checks.append(Attributes(requester, "impersonate", api_group="authentication.k8s.io", resource="uids",
                                 name=uid))
    for check in checks:
        if not rbac.authorize(check)[0]:
            raise Forbidden(check)
    if groups and AUTHENTICATED not in groups and user_name != "system:anonymous":
        groups.append(AUTHENTICATED)
    all_groups = groups or default_groups
    return UserInfo(user_name, uid or "", tuple(all_groups), {k: tuple(v) for k, v in extra.items()})


def _subject_matches(subject: dict[str, Any], user: UserInfo, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        return user.name == f"{SA_PREFIX}{subject.get('namespace') or binding_namespace}:{name}"
    return False


def _has(values: Iterable[str], wanted: str) -> bool:
    values = list(values)
    return "*" in values or wanted in values


def rule_allows(rule: dict[str, Any], attrs: Attributes) -> bool:
    if not _has(rule.get("verbs") or [], attrs.verb):
        return False
    if not attrs.resource_request:
        return any(url == "*" or url == attrs.path or (url.endswith("*") and attrs.path.startswith(url[:-1]))
                   for url in rule.get("nonResourceURLs") or [])
    if not _has(rule.get("apiGroups") or [], attrs.api_group):
        return False
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    resources = rule.get("resources") or []
    if not ("*" in resources or combined in resources or (attrs.subresource and f"*/{attrs.subresource}" in resources)):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


class Rbac:
    """The RBAC authorizer over the Role/ClusterRole/…Binding objects in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _cluster_role_rules(self, name: str) -> list[dict[str, Any]]:
        role = self.store.get("rbac.authorization.k8s.io/clusterroles", "", name)
        if role is None:
            return []
        rules = list(role.get("rules") or [])
        # ClusterRole aggregation: the union of the rules of the ClusterRoles the selectors pick
        for selector in (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []:
            for other in self.store.objects("rbac.authorization.k8s.io/clusterroles"):
                if other["metadata"]["name"] != name and labels_match_selector(other["metadata"].get("labels"),
                                                                               selector):
                    rules += other.get("rules") or []
        return rules

    def _role_rules(self, ref: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
        if ref.get("kind") == "ClusterRole":
            return self._cluster_role_rules(ref.get("name", ""))
        role = self.store.get("rbac.authorization.k8s.io/roles", namespace, ref.get("name", ""))
        return list(role.get("rules") or []) if role else []

    def applicable(self, user: UserInfo, namespace: str) -> Iterable[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
        """(describe, binding, rules) of every binding naming the user: cluster-wide, then the namespace's."""
        for binding in self.store.objects("rbac.authorization.k8s.io/clusterrolebindings"):
            if any(_subject_matches(s, user, "") for s in binding.get("subjects") or []):
                yield "ClusterRoleBinding", binding, self._role_rules(binding.get("roleRef", {}), "")
        if namespace:
            for binding in self.store.objects("rbac.authorization.k8s.io/rolebindings", namespace):
                if any(_subject_matches(s, user, namespace) for s in binding.get("subjects") or []):
                    yield "RoleBinding", binding, self._role_rules(binding.get("roleRef", {}), namespace)

    def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        if MASTERS in attrs.user.groups:
            return True, ""
        for kind, binding, rules in self.applicable(attrs.user, attrs.namespace):
            if kind == "RoleBinding" and not attrs.resource_request:
                continue  # non-resource rules only apply through ClusterRoleBindings
            if any(rule_allows(rule, attrs) for rule in rules):
                ref = binding.get("roleRef", {})
                name = binding["metadata"]["name"] + (f"/{attrs.namespace}" if kind == "RoleBinding" else "")
                subject = next(s for s in binding["subjects"] if _subject_matches(s, attrs.user, attrs.namespace))
                return True, (f'RBAC: allowed by {kind} "{name}" of {ref.get("kind")} "{ref.get("name")}" '
                              f'to {subject.get("kind")} "{subject.get("name")}"')
        return False, ""

    def rules_review(self, user: UserInfo, namespace: str) -> dict[str, Any]:
        if MASTERS in user.groups:
            return {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": False}
        resource_rules, non_resource_rules = [], []
        for kind, _, rules in self.applicable(user, namespace):
            for rule in rules:
                if rule.get("nonResourceURLs"):
                    if kind == "ClusterRoleBinding":
                        non_resource_rules.append({"verbs": rule.get("verbs", []),
                                                   "nonResourceURLs": rule["nonResourceURLs"]})
                else:
                    resource_rules.append({k: rule[k] for k in ("verbs", "apiGroups", "resources", "resourceNames")
                                           if rule.get(k)})
        return {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": False}
