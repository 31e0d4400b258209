"""The error envelope: every failure leaves as {"error": {code, message, request_id}}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """An error with an HTTP status, a snake_case code and a message telling what to fix."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # picklable with its own fields: a worker process raises it back to the caller. Not
        # through the constructor: a subclass may take other arguments than ApiError's
        return (_rebuilt, (type(self), self.status, self.code, self.message, self.headers))


def _rebuilt(
    cls: type[ApiError], status: int, code: str, message: str, headers: dict[str, str]
) -> ApiError:
    error = cls.__new__(cls)
    ApiError.__init__(error, status, code, message, headers)
    return error


def bad_request(message: str, code: str = "bad_request") -> ApiError:
    return ApiError(400, code, message)


def unprocessable(message: str, code: str = "validation_error") -> ApiError:
    return ApiError(422, code, message)


def not_found(what: str, name: str) -> ApiError:
    return ApiError(404, f"{what}_not_found", f"{what} '{name}' does not exist for this tenant")


def conflict(message: str, code: str = "conflict") -> ApiError:
    return ApiError(409, code, message)


def unavailable(message: str, retry_after: int = 1, code: str = "unavailable") -> ApiError:
    return ApiError(503, code, message, {"Retry-After": str(retry_after)})


def envelope(code: str, message: str, request_id: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message, "request_id": request_id}}
