"""HTTP-facing errors: every refusal has a status, a stable ``error`` code and a message naming the cause."""

from __future__ import annotations

from typing import Any

from ..errors import K3sdaasError


class ApiError(K3sdaasError):
    def __init__(self, status: int, error: str, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message, field=field)
        self.status = status
        self.error = error
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error, "message": str(self)}
        if self.field:
            body["field"] = self.field
        body.update(self.extra)
        return body


def bad_request(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, "invalid_request", message, field=field)


def unauthorized(error: str, message: str, **extra: Any) -> ApiError:
    return ApiError(401, error, message, **extra)


def forbidden(error: str, message: str) -> ApiError:
    return ApiError(403, error, message)


def unavailable(error: str, message: str) -> ApiError:
    return ApiError(503, error, message, reason=message)
