"""Errors as ``Status`` objects, with kube-apiserver's reasons and message texts."""

from __future__ import annotations

from typing import Any

from .resources import Resource

REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
           406: "NotAcceptable", 409: "Conflict", 410: "Expired", 413: "RequestEntityTooLarge",
           415: "UnsupportedMediaType", 422: "Invalid", 500: "InternalError", 501: "NotImplemented"}


class ApiError(Exception):
    def __init__(self, code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None
                 ) -> None:
        super().__init__(message)
        self.code, self.message, self.reason, self.details = code, message, reason or REASONS[code], details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body


def qualified(resource: Resource) -> str:
    return f"{resource.name}.{resource.group}" if resource.group else resource.name


def _details(resource: Resource, name: str) -> dict[str, Any]:
    details = {"name": name, "kind": resource.name}
    if resource.group:
        details["group"] = resource.group
    return details


def not_found(resource: Resource, name: str) -> ApiError:
    return ApiError(404, f'{qualified(resource)} "{name}" not found', details=_details(resource, name))


def namespace_not_found(name: str) -> ApiError:
    return ApiError(404, f'namespaces "{name}" not found', details={"name": name, "kind": "namespaces"})


def already_exists(resource: Resource, name: str) -> ApiError:
    return ApiError(409, f'{qualified(resource)} "{name}" already exists', "AlreadyExists", _details(resource, name))


def conflict(resource: Resource, name: str) -> ApiError:
    return ApiError(409, f'Operation cannot be fulfilled on {qualified(resource)} "{name}": the object has been '
                         "modified; please apply your changes to the latest version and try again",
                    details=_details(resource, name))


def invalid(resource: Resource, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422, as field validation answers: ``Kind "name" is invalid: field: message``."""
    text = ", ".join(f"{field}: {message}" for field, message in causes)
    details = {**_details(resource, name), "kind": resource.kind,
               "causes": [{"reason": "FieldValueInvalid", "field": f, "message": m} for f, m in causes]}
    return ApiError(422, f'{resource.kind} "{name}" is invalid: {text}', details=details)


def forbidden(message: str, resource: Resource | None, resource_name: str, name: str) -> ApiError:
    """403 with the RBAC text: ``pods "x" is forbidden: User "u" cannot get resource …``."""
    subject = f'{resource_name} "{name}"' if name else resource_name
    details: dict[str, Any] = {"kind": resource.name if resource else resource_name}
    if name:
        details["name"] = name
    if resource and resource.group:
        details["group"] = resource.group
    return ApiError(403, f"{subject} is forbidden: {message}" if resource_name else f"forbidden: {message}",
                    details=details if resource_name else None)
