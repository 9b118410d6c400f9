"""Label selectors (the string form of ``?labelSelector=`` and the LabelSelector object) and field selectors."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]
_SET = re.compile(r"^\s*(!?)\s*([A-Za-z0-9./_-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")


class SelectorError(ValueError):
    pass


def _split(selector: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def parse_label_selector(selector: str) -> Callable[[Mapping[str, str] | None], bool]:
    """The ``?labelSelector=`` syntax: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a)``, ``k``, ``!k``."""
    requirements: list[tuple[str, str, set[str]]] = []  # (key, operator, values)
    for part in _split(selector):
        eq = _EQ.match(part)
        if eq:
            key, op, value = eq.groups()
            requirements.append((key, "notin" if op == "!=" else "in", {value}))
            continue
        match = _SET.match(part)
        if match is None or (match.group(1) and match.group(3)):
            raise SelectorError(f"unable to parse requirement: {part.strip()!r}")
        negate, key, op, values = match.groups()
        if op:
            requirements.append((key, op, {v.strip() for v in values.split(",") if v.strip()}))
        else:
            requirements.append((key, "!" if negate else "exists", set()))

    def matches(labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all({"in": labels.get(k) in values, "notin": labels.get(k) not in values, "exists": k in labels,
                    "!": k not in labels}[op] for k, op, values in requirements)

    return matches


def labels_match_selector(labels: Mapping[str, str] | None, selector: Mapping[str, Any]) -> bool:
    """A LabelSelector object (matchLabels, matchExpressions); an empty one matches everything."""
    labels = labels or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        present = key in labels
        if not {"In": present and labels[key] in values, "NotIn": not present or labels[key] not in values,
                "Exists": present, "DoesNotExist": not present}.get(op, False):
            return False
    return True


def _field(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def parse_field_selector(selector: str) -> Predicate:
    """``a.b=c,d!=e``: any dotted field of the object (the real server limits the fields per type)."""
    requirements = []
    for part in _split(selector):
        match = re.match(r"^\s*([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if match is None:
            raise SelectorError(f"invalid field selector: {part.strip()!r}")
        path, op, value = match.groups()
        requirements.append((path, op == "!=", value))
    return lambda obj: all((_field(obj, path) == value) != negate for path, negate, value in requirements)
