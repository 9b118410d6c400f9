"""The HTTP surface: authentication, impersonation, RBAC, discovery, CRUD, watch, exec, the K3s supervisor bits.

One ASGI application; every request goes through the same steps as in kube-apiserver: authenticate
(the chain in ``auth``), impersonate, resolve what is addressed (``requestinfo``), authorize with RBAC,
then serve. Every error is a ``Status`` object.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from .. import pki
from . import errors, patch, policy, protobuf, resources
from .auth import (
    MASTERS,
    NODE_NAME,
    NODE_PREFIX,
    NODES,
    Attributes,
    Authenticator,
    BadImpersonation,
    BootstrapTokens,
    Forbidden,
    NodePasswords,
    Rbac,
    ServiceAccountTokens,
    StaticToken,
    UserInfo,
    authenticate,
    impersonate,
)
from .errors import ApiError
from .requestinfo import RequestInfo, request_info
from .resources import BY_PATH, Resource
from .selectors import SelectorError, parse_field_selector, parse_label_selector
from .store import Conflict, Store
from .workloads import Controllers

log = logging.getLogger(__name__)

KUBE_VERSION = {"major": "1", "minor": "33", "gitVersion": "v1.33.0+k3sdaas-localnet", "gitCommit": "",
                "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24",
                "compiler": "gc", "platform": "linux/amd64"}
MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's default --max-request-bytes-ish limit for one object
MAX_WATCH_SECONDS = 1800
MAX_DEPTH = 100
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
PATCH_TYPES = {"application/merge-patch+json", "application/strategic-merge-patch+json", "application/json-patch+json",
               "application/apply-patch+yaml"}
STAND_IN = "k3sdaas-localnet kube is a Kubernetes API stand-in: no container runs"


def _status_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.status(), status_code=error.code)


def _wants_table(request: Request) -> bool:
    return "as=Table" in request.headers.get("accept", "")


class KubeApi:
    """The ASGI application. ``ca_pem`` is served on /cacerts; ``admin_token`` is the cluster-admin credential."""

    def __init__(self, state: Path, ca_pem: bytes, admin_token: str, grace_seconds: float = 40.0) -> None:
        self.state = state
        self.store = Store(state / "kube.db")
        self.ca_pem = ca_pem
        self.node_passwords = NodePasswords(self.store)
        self.rbac = Rbac(self.store)
        # The authenticator chain; a TokenReview webhook link can be appended the same way.
        self.authenticators: list[Authenticator] = [
            StaticToken(admin_token, UserInfo("system:admin", groups=(MASTERS, "system:authenticated"))),
            BootstrapTokens(self.store), ServiceAccountTokens(self.store)]
        self.controllers = Controllers(self.store, grace_seconds)
        policy.seed(self.store)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(WebSocket(scope, receive, send))
        else:
            request = Request(scope, receive)
            try:
                response = await self._http(request)
            except ApiError as error:
                response = _status_response(error)
            except Exception:  # never a bare 500: a bug answers an InternalError Status and is logged
                log.exception("%s %s failed", request.method, request.url.path)
                response = _status_response(ApiError(500, "an internal error occurred in the stand-in"))
            await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        task: asyncio.Task[None] | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                task = asyncio.create_task(self.controllers.run())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if task:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- identity ---
    def _user(self, headers: Any) -> UserInfo:
        header = headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        user = None
        if scheme.lower() == "bearer" and token:
            user = authenticate(self.authenticators, token.strip())
        elif scheme.lower() == "basic" and token:
            try:
                username, _, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise ApiError(401, "Unauthorized") from None
            user = self.node_passwords.authenticate_basic(username, password)
        if user is None:
            raise ApiError(401, "Unauthorized")
        try:
            return impersonate(user, headers.items(), self.rbac)
        except BadImpersonation as exc:
            raise ApiError(400, str(exc)) from None
        except Forbidden as exc:
            a = exc.attributes
            resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
            raise errors.forbidden(str(exc), None, resource, a.name) from None

    def _client_kubelet_cert(self, request: Request) -> Response:
        """K3s's supervisor: a node's kubelet client certificate for the join token (or the node's own
        credentials), keeping the node's password on first use and refusing another one after."""
        if request.method != "GET":
            raise ApiError(405, "the server does not allow this method on the requested resource")
        user = self._user(request.headers)
        node = request.headers.get("k3s-node-name", "")
        password = request.headers.get("k3s-node-password", "")
        if not NODE_NAME.match(node) or not 0 < len(password) <= 256:
            raise ApiError(400, "k3s-Node-Name (a node name) and k3s-Node-Password (1 to 256 characters) are required")
        allowed = {MASTERS, "system:bootstrappers"} & set(user.groups) or user.name == f"{NODE_PREFIX}{node}"
        if not allowed:
            raise ApiError(403, f'User "{user.name}" cannot get the kubelet client certificate of node "{node}"')
        if not self.node_passwords.enroll(node, password):
            raise ApiError(403, "Node password rejected, duplicate hostname or contents of "
                                "'/etc/rancher/node/password' may not match server node-passwd entry, try enabling "
                                "a unique node name with the --with-node-id flag")
        return Response(pki.issue_client(self.state, f"{NODE_PREFIX}{node}", [NODES]), media_type="text/plain")

    def _authorize(self, user: UserInfo, info: RequestInfo, resource: Resource | None) -> None:
        attrs = Attributes(user, info.verb, info.resource_request, info.namespace, info.group, info.resource,
                           info.subresource, info.name, info.path)
        if not self.rbac.authorize(attrs)[0]:
            name = f"{info.resource}.{info.group}" if info.group else info.resource
            raise errors.forbidden(attrs.forbidden_message(), resource, name if info.resource_request else "",
                                   info.name)

    # --- HTTP ---
    async def _http(self, request: Request) -> Response:
        path = request.url.path
        if path == "/ping":
            return PlainTextResponse("pong")
        if path == "/cacerts":
            return Response(self.ca_pem, media_type="text/plain")
        if path == "/v1-k3s/client-kubelet.crt":
            return self._client_kubelet_cert(request)
        info = request_info(request.method, path, dict(request.query_params))
        user = self._user(request.headers)
        resource = BY_PATH.get((info.group, info.version, info.resource)) if info.resource_request else None
        self._authorize(user, info, resource)
        if not info.resource_request:
            return self._non_resource(request, path)
        if resource is None:
            raise ApiError(404, "the server could not find the requested resource")
        return await self._resource(request, info, resource, user)

    def _non_resource(self, request: Request, path: str) -> Response:
        if request.method != "GET":
            raise ApiError(405, f"the server does not allow this method on the requested resource ({path})")
        parts = [p for p in path.split("/") if p]
        if path in ("/version", "/version/"):
            return JSONResponse(KUBE_VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return PlainTextResponse("ok")
        if path == "/api":
            return JSONResponse({"kind": "APIVersions", "versions": ["v1"],
                                 "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                 "serverAddress": request.url.netloc}]})
        if path == "/apis":
            return JSONResponse(resources.api_groups())
        if (parts[:1] == ["api"] and len(parts) == 2) or (parts[:1] == ["apis"] and len(parts) == 3):
            document = resources.resource_list(*(("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])))
            if document is not None:
                return JSONResponse(document)
        if parts[:1] == ["apis"] and len(parts) == 2:
            found = next((g for g in resources.api_groups()["groups"] if g["name"] == parts[1]), None)
            if found is not None:
                return JSONResponse({"kind": "APIGroup", "apiVersion": "v1", **found})
        if parts[:1] == ["openapi"]:
            return self._openapi(request, parts[1:])
        raise ApiError(404, "the server could not find the requested resource")

    def _openapi(self, request: Request, parts: list[str]) -> Response:
        """Enough OpenAPI for kubectl's strict validation to find the GVKs and skip schema checks."""
        if parts == ["v2"]:
            if "protobuf" in request.headers.get("accept", ""):
                # An empty openapi_v2.Document: no definitions, so kubectl validates nothing client-side.
                return Response(b"", media_type="application/octet-stream")
            info = {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]}
            return JSONResponse({"swagger": "2.0", "info": info, "paths": {}, "definitions": {}})
        if parts == ["v3"]:
            gvs = {("api/" + v if not g else f"apis/{g}/{v}"): {"serverRelativeURL": "/openapi/v3/" + (
                "api/" + v if not g else f"apis/{g}/{v}") + "?hash=" + KUBE_VERSION["gitVersion"]}
                for g, v in resources.GROUP_VERSIONS}
            return JSONResponse({"paths": gvs})
        if parts[:1] == ["v3"] and len(parts) >= 3:
            group, version = ("", parts[2]) if parts[1] == "api" else (parts[2], parts[3] if len(parts) > 3 else "")
            served = [r for r in resources.RESOURCES if (r.group, r.version) == (group, version)]
            if served:
                return JSONResponse(_openapi_group(served))
        raise ApiError(404, "the server could not find the requested resource")

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            raise ApiError(413, f"Request entity too large: limit is {MAX_BODY}")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise ApiError(413, f"Request entity too large: limit is {MAX_BODY}")
        return body

    async def _decode(self, request: Request, allowed: set[str] | None = None) -> Any:
        content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        body = await self._body(request)
        if allowed is not None and content_type not in allowed:
            raise ApiError(415, f"the body of the request was in an unknown format - accepted media types include: "
                                f"{', '.join(sorted(allowed))}")
        try:
            if content_type == "application/vnd.kubernetes.protobuf":
                return protobuf.decode(body)
            if content_type in ("application/yaml", "application/apply-patch+yaml"):
                return _bounded_depth(yaml.safe_load(body.decode()))
            if content_type in ("application/json", "") or content_type.endswith("+json"):
                return _bounded_depth(json.loads(body))
        except (ValueError, yaml.YAMLError, RecursionError) as exc:
            raise ApiError(400, f"the request body cannot be decoded: {(str(exc) or 'too deep').splitlines()[0][:200]}"
                           ) from None
        raise ApiError(415, "the body of the request was in an unknown format - accepted media types include: "
                            "application/json, application/yaml, application/vnd.kubernetes.protobuf")

    async def _resource(self, request: Request, info: RequestInfo, resource: Resource, user: UserInfo) -> Response:
        if info.namespace and not resource.namespaced and info.resource != "namespaces":
            raise ApiError(404, "the server could not find the requested resource")
        if info.subresource and info.subresource not in resource.subresources:
            raise ApiError(404, "the server could not find the requested resource")
        if info.verb not in resource.verbs and not info.subresource:
            raise ApiError(405, f"the server does not allow this method on the requested resource ({info.verb})")
        if not resource.stored:
            return await self._review(request, resource, user)
        namespace = info.namespace if resource.namespaced else ""
        if info.subresource in ("log", "exec", "attach", "portforward"):
            return self._pod_stream_refusal(info, resource)
        if info.subresource == "scale":
            return await self._scale(request, info, resource, namespace)
        if info.subresource == "eviction":
            return await self._evict(request, info, resource, namespace)
        handler: Callable[..., Awaitable[Response]] | None = {
            "get": self._get, "list": self._list, "watch": self._watch, "create": self._create,
            "update": self._update, "patch": self._patch, "delete": self._delete,
            "deletecollection": self._delete_collection}.get(info.verb)
        if handler is None:
            raise ApiError(405, f"the server does not allow this method on the requested resource ({info.verb})")
        return await handler(request, info, resource, namespace)

    def _key(self, resource: Resource) -> str:
        return f"{resource.group}/{resource.name}"

    def _existing(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(self._key(resource), namespace, name)
        if obj is None:
            raise errors.not_found(resource, name)
        return obj

    def _pod_stream_refusal(self, info: RequestInfo, resource: Resource) -> Response:
        self._existing(resource, info.namespace, info.name)
        if info.subresource == "log":
            return PlainTextResponse(f"{STAND_IN}, so pod {info.name} has no logs\n")
        if info.subresource == "portforward":
            raise ApiError(400, f"port-forward is not supported: {STAND_IN}, so nothing listens in pod {info.name}")
        raise ApiError(400, f"{info.subresource} needs a WebSocket upgrade (v5.channel.k8s.io or v4.channel.k8s.io); "
                            "SPDY is not supported by this stand-in")

    async def _scale(self, request: Request, info: RequestInfo, resource: Resource, namespace: str) -> Response:
        """``deployments/scale`` as an autoscaling/v1 Scale: read, or write ``spec.replicas`` only."""
        current = self._existing(resource, namespace, info.name)
        if info.verb in ("update", "patch"):
            body = await self._decode(request, PATCH_TYPES if info.verb == "patch" else None)
            scale = patch.merge_patch(_scale_of(current), body) if info.verb == "patch" else body
            replicas = scale.get("spec", {}).get("replicas") if isinstance(scale, dict) and isinstance(
                scale.get("spec"), dict) else None
            if not isinstance(replicas, int) or isinstance(replicas, bool):
                raise errors.invalid(resource, info.name, [("spec.replicas", "Required value: an integer")])
            new = json.loads(json.dumps(current))
            new["spec"]["replicas"] = replicas
            policy.prepare(resource, new, self.store, self.ca_pem)
            current = self.store.update(self._key(resource), new, None)
        elif info.verb != "get":
            raise ApiError(405, "the server does not allow this method on the requested resource")
        return JSONResponse(_scale_of(current))

    async def _evict(self, request: Request, info: RequestInfo, resource: Resource, namespace: str) -> Response:
        """``pods/eviction`` (what ``kubectl drain`` posts): no PodDisruptionBudgets exist here, so it always
        deletes the pod and answers 201 Success, as kube-apiserver does for an allowed eviction."""
        if info.verb != "create":
            raise ApiError(405, "the server does not allow this method on the requested resource")
        body = await self._decode(request)
        named = body.get("metadata", {}).get("name") if isinstance(body, dict) and isinstance(
            body.get("metadata"), dict) else None
        if not isinstance(body, dict) or body.get("kind") not in (None, "Eviction"):
            raise ApiError(400, "the body of an eviction must be a policy/v1 Eviction")
        if named not in (None, info.name):
            raise ApiError(400, "name in URL does not match name in Eviction object")
        if request.query_params.get("dryRun") != "All":
            obj = self.store.delete(self._key(resource), namespace, info.name)
            if obj is None:
                raise errors.not_found(resource, info.name)
            policy.after_delete(resource, obj, self.store)
        else:
            self._existing(resource, namespace, info.name)
        return JSONResponse({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
                            status_code=201)

    async def _get(self, request: Request, info: RequestInfo, resource: Resource, namespace: str) -> Response:
        obj = self._existing(resource, namespace, info.name)
        if _wants_table(request):
            return self._table(resource, [obj])
        return JSONResponse(obj)

    def _table(self, resource: Resource, objects: list[dict[str, Any]]) -> Response:
        return JSONResponse(resources.table(resource, objects, str(self.store.rv)),
                            media_type="application/json;as=Table;v=v1;g=meta.k8s.io")

    def _selected(self, request: Request, resource: Resource, namespace: str) -> Callable[[dict[str, Any]], bool]:
        try:
            labels = parse_label_selector(request.query_params.get("labelSelector", ""))
            fields = parse_field_selector(request.query_params.get("fieldSelector", ""))
        except SelectorError as exc:
            raise ApiError(400, str(exc)) from None
        return lambda obj: (not namespace or obj["metadata"].get("namespace") == namespace) and labels(
            obj["metadata"].get("labels")) and fields(obj)

    async def _list(self, request: Request, info: RequestInfo, resource: Resource, namespace: str) -> Response:
        selected = self._selected(request, resource, namespace)
        items = [o for o in self.store.objects(self._key(resource), namespace or None) if selected(o)]
        if _wants_table(request):
            return self._table(resource, items)
        return JSONResponse({"kind": f"{resource.kind}List", "apiVersion": resource.group_version,
                             "metadata": {"resourceVersion": str(self.store.rv)}, "items": items})

    async def _watch(self, request: Request, info: RequestInfo, resource: Resource, namespace: str) -> Response:
        selected = self._selected(request, resource, namespace)
        if info.name:
            by_name = selected
            selected = lambda obj: by_name(obj) and obj["metadata"]["name"] == info.name  # noqa: E731
        table = _wants_table(request)
        raw_rv = request.query_params.get("resourceVersion", "")
        try:
            timeout = min(float(request.query_params.get("timeoutSeconds", MAX_WATCH_SECONDS)), MAX_WATCH_SECONDS)
            start = int(raw_rv) if raw_rv not in ("", "0") else None
        except ValueError:
            raise ApiError(400, f"invalid resourceVersion or timeoutSeconds: {raw_rv!r}") from None
        key = self._key(resource)
        bookmarks = request.query_params.get("allowWatchBookmarks", "").lower() == "true"

        def event(kind: str, obj: dict[str, Any]) -> bytes:
            shown = resources.table(resource, [obj], obj["metadata"].get("resourceVersion", "")) if table else obj
            return json.dumps({"type": kind, "object": shown}).encode() + b"\n"

        async def stream() -> AsyncIterator[bytes]:
            deadline = time.monotonic() + timeout
            rv = self.store.rv
            if start is None:
                for obj in self.store.objects(key, namespace or None):
                    if selected(obj):
                        yield event("ADDED", obj)
            else:
                rv = start
            while time.monotonic() < deadline:
                changed = self.store.changed
                changes = self.store.changes_since(rv)
                if changes is None:
                    gone = ApiError(410, f"too old resource version: {rv} ({self.store.rv})", "Expired")
                    yield json.dumps({"type": "ERROR", "object": gone.status()}).encode() + b"\n"
                    return
                for change in changes:
                    rv = change.rv
                    if change.resource == key and selected(change.obj):
                        yield event(change.type, change.obj)
                try:
                    await asyncio.wait_for(changed.wait(), timeout=max(0.0, min(5.0, deadline - time.monotonic())))
                except TimeoutError:
                    if bookmarks:  # only when asked: an unsolicited BOOKMARK prints a junk row in kubectl
                        mark = {"kind": resource.kind, "apiVersion": resource.group_version,
                                "metadata": {"resourceVersion": str(rv)}}
                        yield json.dumps({"type": "BOOKMARK", "object": mark}).encode() + b"\n"

        media = "application/json;as=Table;v=v1;g=meta.k8s.io" if table else "application/json"
        return StreamingResponse(stream(), media_type=media)

    def _validate(self, resource: Resource, obj: Any, namespace: str, name: str | None) -> dict[str, Any]:
        """Shape checks every write shares; returns the object with its namespace set."""
        if not isinstance(obj, dict):
            raise ApiError(400, "the request body must be a JSON object")
        obj = _without_nulls(obj)
        if obj.get("kind") not in (None, "", resource.kind):
            raise ApiError(400, f"the body is a {obj.get('kind')!r}, not a {resource.kind} as the URL says")
        if obj.get("apiVersion") not in (None, "", resource.group_version):
            raise ApiError(400, f"apiVersion {obj.get('apiVersion')!r} does not match {resource.group_version!r}")
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "metadata must be an object")
        if name is not None and meta.get("name", name) != name:
            raise ApiError(400, f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                                f"({name})")
        if resource.namespaced:
            if (meta.get("namespace") or namespace) != namespace:
                raise ApiError(400, "the namespace of the provided object does not match the namespace sent on the "
                                    "request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        for field in ("labels", "annotations"):
            values = meta.get(field)
            if values is not None and (not isinstance(values, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in values.items())):
                raise errors.invalid(resource, str(meta.get("name", "")),
                                     [(f"metadata.{field}", "must be a map of strings to strings")])
        obj["kind"], obj["apiVersion"] = resource.kind, resource.group_version
        return obj

    def _check_name(self, resource: Resource, name: Any) -> None:
        if not isinstance(name, str) or not name:
            raise errors.invalid(resource, "", [("metadata.name", "Required value: name or generateName is required")])
        if resource.group == "rbac.authorization.k8s.io":
            ok = "/" not in name and "%" not in name and name not in (".", "..") and len(name) <= 253
        elif resource.kind == "Namespace":
            ok = bool(LABEL_RE.match(name)) and len(name) <= 63
        else:
            ok = bool(NAME_RE.match(name)) and len(name) <= 253
        if not ok:
            raise errors.invalid(resource, name, [("metadata.name", f'Invalid value: "{name}": a lowercase RFC 1123 '
                                                   "name must consist of lower case alphanumeric characters, '-' or "
                                                   "'.', and must start and end with an alphanumeric character")])

    async def _create(self, request: Request, info: RequestInfo, resource: Resource, namespace: str) -> Response:
        if info.name or info.subresource:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        obj = self._validate(resource, await self._decode(request), namespace, None)
        return self._store_new(request, resource, namespace, obj)

    def _store_new(self, request: Request, resource: Resource, namespace: str, obj: dict[str, Any]) -> Response:
        meta = obj["metadata"]
        if not meta.get("name") and isinstance(meta.get("generateName"), str) and meta["generateName"]:
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
        self._check_name(resource, meta.get("name"))
        if resource.namespaced and self.store.get("/namespaces", "", namespace) is None:
            raise errors.namespace_not_found(namespace)
        if resource.kind in ("Pod", "Deployment"):
            obj.pop("status", None)  # as their create strategies do: status is the controllers' and kubelets'
        policy.prepare(resource, obj, self.store, self.ca_pem)
        if request.query_params.get("dryRun") == "All":
            return JSONResponse(obj, status_code=201)
        try:
            created = self.store.create(self._key(resource), obj)
        except Conflict:
            raise errors.already_exists(resource, meta["name"]) from None
        policy.after_create(resource, created, self.store)
        return JSONResponse(created, status_code=201)

    def _replace(self, request: Request, info: RequestInfo, resource: Resource, current: dict[str, Any],
                 new: dict[str, Any], expected_rv: str | None) -> Response:
        """Write ``new`` over ``current``: only status through /status, never status through the main resource."""
        if "status" in resource.subresources:
            if info.subresource == "status":
                new = {**current, "status": new.get("status", current.get("status"))}
            elif "status" in current or "status" in new:
                new["status"] = current.get("status", {})
        policy.prepare(resource, new, self.store, self.ca_pem)
        if request.query_params.get("dryRun") == "All":
            return JSONResponse(new)
        try:
            return JSONResponse(self.store.update(self._key(resource), new, expected_rv))
        except Conflict:
            raise errors.conflict(resource, info.name) from None
        except KeyError:
            raise errors.not_found(resource, info.name) from None

    async def _update(self, request: Request, info: RequestInfo, resource: Resource, namespace: str) -> Response:
        if not info.name:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        new = self._validate(resource, await self._decode(request), namespace, info.name)
        current = self._existing(resource, namespace, info.name)
        return self._replace(request, info, resource, current, new, new["metadata"].get("resourceVersion"))

    async def _patch(self, request: Request, info: RequestInfo, resource: Resource, namespace: str) -> Response:
        if not info.name:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await self._decode(request, PATCH_TYPES)
        current = self.store.get(self._key(resource), namespace, info.name)
        if current is None:
            if content_type == "application/apply-patch+yaml" and not info.subresource:  # server-side apply creates
                obj = self._validate(resource, body, namespace, info.name)
                return self._store_new(request, resource, namespace, obj)
            raise errors.not_found(resource, info.name)
        try:
            if content_type == "application/json-patch+json":
                new = patch.json_patch(current, body)
            elif content_type == "application/merge-patch+json":
                new = patch.merge_patch(current, body)
            else:
                new = patch.strategic_merge(current, body)
        except patch.PatchError as exc:
            raise ApiError(422, str(exc)) from None
        new = self._validate(resource, new, namespace, info.name)
        expected = body.get("metadata", {}).get("resourceVersion") if isinstance(body, dict) and isinstance(
            body.get("metadata"), dict) else None
        return self._replace(request, info, resource, current, new, expected)

    async def _delete(self, request: Request, info: RequestInfo, resource: Resource, namespace: str) -> Response:
        if info.subresource:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        await self._body(request)  # DeleteOptions: propagation is always Background here
        if request.query_params.get("dryRun") == "All":
            return JSONResponse(self._existing(resource, namespace, info.name))
        obj = self.store.delete(self._key(resource), namespace, info.name)
        if obj is None:
            raise errors.not_found(resource, info.name)
        policy.after_delete(resource, obj, self.store)
        return JSONResponse(obj)

    async def _delete_collection(self, request: Request, info: RequestInfo, resource: Resource, namespace: str
                                 ) -> Response:
        selected = self._selected(request, resource, namespace)
        deleted = []
        for obj in self.store.objects(self._key(resource), namespace or None):
            if selected(obj):
                gone = self.store.delete(self._key(resource), namespace, obj["metadata"]["name"])
                if gone:
                    policy.after_delete(resource, gone, self.store)
                    deleted.append(gone)
        return JSONResponse({"kind": f"{resource.kind}List", "apiVersion": resource.group_version,
                             "metadata": {"resourceVersion": str(self.store.rv)}, "items": deleted})

    async def _review(self, request: Request, resource: Resource, user: UserInfo) -> Response:
        review = await self._decode(request)
        if not isinstance(review, dict):
            raise ApiError(400, "the request body must be a JSON object")
        review = {**review, "kind": resource.kind, "apiVersion": resource.group_version,
                  "metadata": {"creationTimestamp": None}}
        spec: dict[str, Any] = review["spec"] if isinstance(review.get("spec"), dict) else {}
        if resource.kind == "SelfSubjectReview":
            review["status"] = {"userInfo": user.as_json()}
        elif resource.kind == "SelfSubjectRulesReview":
            review["status"] = self.rbac.rules_review(user, str(spec.get("namespace") or ""))
        else:
            attrs = spec.get("resourceAttributes")
            non_resource = spec.get("nonResourceAttributes")
            if isinstance(attrs, dict):
                check = Attributes(user, str(attrs.get("verb", "")), True, str(attrs.get("namespace") or ""),
                                   str(attrs.get("group") or ""), str(attrs.get("resource") or ""),
                                   str(attrs.get("subresource") or ""), str(attrs.get("name") or ""))
            elif isinstance(non_resource, dict):
                check = Attributes(user, str(non_resource.get("verb", "")), False, path=str(non_resource.get("path")))
            else:
                raise errors.invalid(resource, "", [("spec", "Invalid value: exactly one of nonResourceAttributes "
                                                     "or resourceAttributes must be specified")])
            allowed, reason = self.rbac.authorize(check)
            review["status"] = {"allowed": allowed, **({"reason": reason} if reason else {})}
        return JSONResponse(review, status_code=201)

    # --- WebSocket: exec/attach answer over the channel protocol, everything else is refused ---
    async def _websocket(self, ws: WebSocket) -> None:
        path = ws.url.path
        info = request_info("GET", path, dict(ws.query_params))
        try:
            user = self._user(ws.headers)
            resource = BY_PATH.get((info.group, info.version, info.resource)) if info.resource_request else None
            self._authorize(user, info, resource)
            if resource is None or resource.name != "pods" or info.subresource not in ("exec", "attach",
                                                                                        "portforward"):
                raise ApiError(400, "only pods/exec and pods/attach can be upgraded to a WebSocket here")
            self._existing(resource, info.namespace, info.name)
            if info.subresource == "portforward":
                raise ApiError(400, f"port-forward is not supported: {STAND_IN}, so nothing listens in pod "
                                    f"{info.name}")
            offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",")]
            protocol = next((p for p in ("v5.channel.k8s.io", "v4.channel.k8s.io") if p in offered), None)
            if protocol is None:
                raise ApiError(400, "the exec WebSocket needs the v5.channel.k8s.io or v4.channel.k8s.io subprotocol")
        except ApiError as error:
            await ws.send_denial_response(_status_response(error))
            return
        await ws.accept(subprotocol=protocol)
        message = f"{STAND_IN}, so there is nothing to {info.subresource} in pod {info.name}"
        await ws.send_bytes(b"\x02" + message.encode() + b"\n")
        status = {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError",
                  "details": {"causes": [{"reason": "ExitCode", "message": "126"}]}}
        await ws.send_bytes(b"\x03" + json.dumps(status).encode())
        await ws.close()


def _scale_of(deployment: dict[str, Any]) -> dict[str, Any]:
    meta = deployment["metadata"]
    selector = deployment.get("spec", {}).get("selector", {}).get("matchLabels") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
            "spec": {"replicas": deployment.get("spec", {}).get("replicas", 1)},
            "status": {"replicas": deployment.get("status", {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))}}


def _without_nulls(value: Any) -> Any:
    """null fields are absent ones, as Go's decoding into structs makes them."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _bounded_depth(value: Any) -> Any:
    """The decoded body, refused when nested deeper than MAX_DEPTH (the patch code recurses over it)."""
    level: list[Any] = [value]
    for _ in range(MAX_DEPTH):
        level = [c for v in level for c in (v.values() if isinstance(v, dict) else v if isinstance(v, list) else ())]
        if not level:
            return value
    raise ValueError(f"the object is nested deeper than {MAX_DEPTH} levels")


def _openapi_group(served: list[Resource]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for r in served:
        prefix = f"/apis/{r.group}/{r.version}" if r.group else f"/api/{r.version}"
        scope = f"{prefix}/namespaces/{{namespace}}/{r.name}" if r.namespaced else f"{prefix}/{r.name}"
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        operation = {"x-kubernetes-group-version-kind": gvk, "responses": {"200": {"description": "OK"}},
                     "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}]}
        paths[scope] = {"post": operation}
        paths[f"{scope}/{{name}}"] = {"get": operation, "put": operation, "patch": operation, "delete": operation}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
            "paths": paths, "components": {"schemas": {}}}

