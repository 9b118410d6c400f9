"""Decode the protobuf request bodies kubectl ≥ 1.32 sends (``application/vnd.kubernetes.protobuf``).

The wire format is the magic ``k8s\\0`` and a ``runtime.Unknown`` {1 typeMeta {1 apiVersion, 2 kind},
2 raw}; ``raw`` is the object's message. Only the kinds kubectl's typed clients send are described
here, with the field numbers of k8s.io/api's ``generated.proto``; an unknown kind is refused (400).
"""

from __future__ import annotations

import base64
from typing import Any

MAGIC = b"k8s\x00"

# field number -> (JSON name, type); a type is "string", "bytes", "bool", "int", "repeated:<type>",
# "map:<value type>" or a nested schema (a dict).
Schema = dict[int, tuple[str, Any]]

OBJECT_META: Schema = {1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"),
                       5: ("uid", "string"), 6: ("resourceVersion", "string"), 11: ("labels", "map:string"),
                       12: ("annotations", "map:string"), 14: ("finalizers", "repeated:string")}
RESOURCE_ATTRIBUTES: Schema = {1: ("namespace", "string"), 2: ("verb", "string"), 3: ("group", "string"),
                               4: ("version", "string"), 5: ("resource", "string"), 6: ("subresource", "string"),
                               7: ("name", "string")}
LABEL_SELECTOR: Schema = {1: ("matchLabels", "map:string"), 2: ("matchExpressions", "repeated:expr")}
CONTAINER: Schema = {1: ("name", "string"), 2: ("image", "string"), 3: ("command", "repeated:string"),
                     4: ("args", "repeated:string"), 5: ("workingDir", "string"),
                     6: ("ports", "repeated:port"), 7: ("env", "repeated:env"), 14: ("imagePullPolicy", "string")}
POD_SPEC: Schema = {2: ("containers", "repeated:container"), 3: ("restartPolicy", "string"),
                    7: ("nodeSelector", "map:string"), 8: ("serviceAccountName", "string"), 10: ("nodeName", "string"),
                    22: ("tolerations", "repeated:toleration")}
MESSAGES: dict[str, Schema] = {
    "ref": {1: ("name", "string"), 2: ("namespace", "string"), 3: ("kind", "string")},
    "expr": {1: ("key", "string"), 2: ("operator", "string"), 3: ("values", "repeated:string")},
    "port": {1: ("name", "string"), 2: ("hostPort", "int"), 3: ("containerPort", "int"), 4: ("protocol", "string")},
    "env": {1: ("name", "string"), 2: ("value", "string")},
    "toleration": {1: ("key", "string"), 2: ("operator", "string"), 3: ("value", "string"), 4: ("effect", "string"),
                   5: ("tolerationSeconds", "int")},
    "container": CONTAINER,
    "rule": {1: ("verbs", "repeated:string"), 2: ("apiGroups", "repeated:string"), 3: ("resources", "repeated:string"),
             4: ("resourceNames", "repeated:string"), 5: ("nonResourceURLs", "repeated:string")},
    "subject": {1: ("kind", "string"), 2: ("apiGroup", "string"), 3: ("name", "string"), 4: ("namespace", "string")},
    "selector": LABEL_SELECTOR,
}
ROLE_REF: Schema = {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")}
BINDING: Schema = {1: ("metadata", OBJECT_META), 2: ("subjects", "repeated:subject"), 3: ("roleRef", ROLE_REF)}
KINDS: dict[str, Schema] = {
    "Role": {1: ("metadata", OBJECT_META), 2: ("rules", "repeated:rule")},
    "ClusterRole": {1: ("metadata", OBJECT_META), 2: ("rules", "repeated:rule"),
                    3: ("aggregationRule", {1: ("clusterRoleSelectors", "repeated:selector")})},
    "RoleBinding": BINDING,
    "ClusterRoleBinding": BINDING,
    "Deployment": {1: ("metadata", OBJECT_META), 2: ("spec", {
        1: ("replicas", "int"), 2: ("selector", LABEL_SELECTOR),
        3: ("template", {1: ("metadata", OBJECT_META), 2: ("spec", POD_SPEC)}),
        4: ("strategy", {1: ("type", "string")}), 5: ("minReadySeconds", "int"),
        6: ("revisionHistoryLimit", "int"), 7: ("paused", "bool"), 9: ("progressDeadlineSeconds", "int")})},
    "Pod": {1: ("metadata", OBJECT_META), 2: ("spec", POD_SPEC)},
    "Namespace": {1: ("metadata", OBJECT_META), 2: ("spec", {1: ("finalizers", "repeated:string")})},
    "ConfigMap": {1: ("metadata", OBJECT_META), 2: ("data", "map:string"), 3: ("binaryData", "map:bytes"),
                  4: ("immutable", "bool")},
    "Secret": {1: ("metadata", OBJECT_META), 2: ("data", "map:bytes"), 3: ("type", "string"),
               4: ("stringData", "map:string"), 5: ("immutable", "bool")},
    "ServiceAccount": {1: ("metadata", OBJECT_META), 2: ("secrets", "repeated:ref"),
                       3: ("imagePullSecrets", "repeated:ref"), 4: ("automountServiceAccountToken", "bool")},
    "SelfSubjectAccessReview": {1: ("metadata", OBJECT_META), 2: ("spec", {
        1: ("resourceAttributes", RESOURCE_ATTRIBUTES),
        2: ("nonResourceAttributes", {1: ("path", "string"), 2: ("verb", "string")})})},
    "SelfSubjectRulesReview": {1: ("metadata", OBJECT_META), 2: ("spec", {1: ("namespace", "string")})},
    "SelfSubjectReview": {1: ("metadata", OBJECT_META)},
}
UNKNOWN: Schema = {1: ("typeMeta", {1: ("apiVersion", "string"), 2: ("kind", "string")}), 2: ("raw", "bytes")}


class ProtobufError(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated field")
            out.append((number, data[pos:pos + length]))
            pos += length
        elif wire in (1, 5):  # fixed64/fixed32: no field used here has them; skip
            pos += 8 if wire == 1 else 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
    return out


def _scalar(kind: str, value: int | bytes) -> Any:
    if kind in ("bool", "int"):
        if not isinstance(value, int):
            raise ProtobufError(f"expected a varint for a {kind}")
        return bool(value) if kind == "bool" else value
    if not isinstance(value, bytes):
        raise ProtobufError(f"expected bytes for a {kind}")
    if kind == "bytes":
        return base64.b64encode(value).decode()  # JSON carries bytes as base64, as the real API does
    if kind in MESSAGES:
        return decode_message(value, MESSAGES[kind])
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise ProtobufError("invalid UTF-8 in a string field") from exc


def decode_message(data: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, value in _fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        if isinstance(kind, dict):
            if not isinstance(value, bytes):
                raise ProtobufError(f"expected a message for {name}")
            out[name] = decode_message(value, kind)
        elif kind.startswith("repeated:"):
            out.setdefault(name, []).append(_scalar(kind.split(":", 1)[1], value))
        elif kind.startswith("map:"):
            if not isinstance(value, bytes):
                raise ProtobufError(f"expected a map entry for {name}")
            entry = decode_message(value, {1: ("key", "string"), 2: ("value", kind.split(":", 1)[1])})
            out.setdefault(name, {})[entry.get("key", "")] = entry.get("value", "")
        elif (decoded := _scalar(kind, value)) != "":  # gogo writes empty strings; JSON would omit them
            out[name] = decoded
    return out


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object; ProtobufError when it cannot be read."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf envelope")
    unknown = decode_message(body[len(MAGIC):], UNKNOWN)
    type_meta = unknown.get("typeMeta", {})
    kind = type_meta.get("kind", "")
    if kind not in KINDS:
        raise ProtobufError(f"protobuf bodies of kind {kind or '<none>'!r} are not supported by this stand-in")
    raw = base64.b64decode(unknown.get("raw", ""))
    return {"apiVersion": type_meta.get("apiVersion", ""), "kind": kind, **decode_message(raw, KINDS[kind])}
