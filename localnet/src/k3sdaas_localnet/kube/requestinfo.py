"""What a request addresses, resolved from its method and path as apiserver's RequestInfoFactory does."""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE_SUBRESOURCES = {"status", "finalize"}


@dataclass(frozen=True)
class RequestInfo:
    path: str
    verb: str
    resource_request: bool = False
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


def request_info(method: str, path: str, query: dict[str, str]) -> RequestInfo:
    parts = [p for p in path.split("/") if p]
    http_verb = method.lower()
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return RequestInfo(path, http_verb)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = "/".join(rest[2:])
    watching = query.get("watch", "").lower() in ("true", "1")
    verb = {"post": "create", "put": "update", "patch": "patch"}.get(http_verb, "")
    if http_verb in ("get", "head"):
        verb = "watch" if watching else ("get" if name else "list")
    elif http_verb == "delete":
        verb = "delete" if name else "deletecollection"
    return RequestInfo(path, verb or http_verb, True, group, version, resource, subresource, namespace, name)
