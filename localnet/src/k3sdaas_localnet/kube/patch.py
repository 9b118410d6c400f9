"""PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.

Strategic merge follows the ``patchMergeKey`` of the fields kubectl and kubelets patch in practice;
other lists are replaced, as for fields without a patch strategy. Directives handled: ``$patch``
(``delete``/``replace`` on maps and list items), ``$setElementOrder/…`` and ``$retainKeys`` (ignored:
order and retained keys follow the patch), ``$deleteFromPrimitiveList/…``.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

# field name -> merge key, from k8s.io/api's `patchMergeKey` tags
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "volumes": "name",
    "env": "name", "ports": "containerPort", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "conditions": "type", "addresses": "type", "imagePullSecrets": "name", "secrets": "name",
    "containerStatuses": "name", "initContainerStatuses": "name", "ownerReferences": "uid",
    "hostAliases": "ip", "podIPs": "ip", "hostIPs": "ip",
}
MERGED_SCALAR_LISTS = {"finalizers"}  # lists of strings with patchStrategy merge


class PatchError(ValueError):
    pass


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, list):
        raise PatchError("a JSON patch must be a list of operations")
    try:
        return jsonpatch.apply_patch(target, patch)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
        raise PatchError(f"the JSON patch cannot be applied: {exc}") from exc


def strategic_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in (value or [])]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and MERGE_KEYS.get(key) and isinstance(result.get(key), list):
            result[key] = _merge_list(result[key], value, MERGE_KEYS[key])
        elif isinstance(value, list) and key in MERGED_SCALAR_LISTS:
            result[key] = list(result.get(key) or []) + [v for v in value if v not in (result.get(key) or [])]
        else:
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def _merge_list(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    if patch and isinstance(patch[0], dict) and patch[0].get("$patch") == "replace" and len(patch[0]) == 1:
        return copy.deepcopy(patch[1:])
    out = [copy.deepcopy(item) for item in current]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"strategic merge patch: list items need the merge key {key!r}")
        index = next((i for i, old in enumerate(out) if isinstance(old, dict) and old.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                out.pop(index)
        elif index is None:
            out.append(strategic_merge({}, item))
        else:
            out[index] = strategic_merge(out[index], item)
    return out
