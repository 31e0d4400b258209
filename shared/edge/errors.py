"""The exception table: which exception becomes which answer (status, code, message,
Retry-After), the one mapping behind every error envelope (architecture.md §3).

The packages that own the exceptions register them (`shared.state`, `shared.registry`, compat
for its own), so the edge imports no backend. Looking an exception up walks its class's MRO,
so the most specific registered class wins. One Retry-After policy: a 503 (a dependency that
is down) always carries Retry-After, and no other status from this table does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Scope

from shared.context import request_id_var
from shared.edge.codec import JSON
from shared.errors import ApiError, envelope

log = logging.getLogger("ml.http")


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """How one exception type is answered. `message` may name the exception as `{exc}`."""

    status: int
    code: str
    message: str
    retry_after: int | None = None
    log_level: int | None = None  # log the exception at this level (None: not worth a line)
    log_as: str = ""  # the log line's words for it (default: the code)

    def answer(self, exc: BaseException) -> ApiError:
        if self.log_level is not None:
            log.log(self.log_level, "%s: %s", self.log_as or self.code, exc)
        headers = None if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        return ApiError(self.status, self.code, self.message.format(exc=exc), headers)


_TABLE: dict[type[BaseException], ErrorRule] = {}


def register(
    exc_type: type[BaseException],
    status: int,
    code: str,
    message: str,
    *,
    retry_after: int | None = None,
    log_level: int | None = None,
    log_as: str = "",
) -> None:
    """Answer `exc_type` (and its subclasses not registered themselves) with this rule.
    Registering the same rule again is harmless; a different one for the same type is a bug."""
    if (status == 503) != (retry_after is not None):
        raise ValueError(
            f"{exc_type.__name__}: a 503 (a dependency that is down) carries Retry-After, "
            "and only a 503 does"
        )
    rule = ErrorRule(status, code, message, retry_after, log_level, log_as)
    known = _TABLE.setdefault(exc_type, rule)
    if known != rule:
        raise ValueError(f"{exc_type.__name__} is already answered as {known.code}")


def rule_of(exc_type: type[BaseException]) -> ErrorRule | None:
    for cls in exc_type.__mro__:
        rule = _TABLE.get(cls)
        if rule is not None:
            return rule
    return None


def api_error_of(exc: BaseException) -> ApiError | None:
    """The answer to `exc`: itself if it is an ApiError, its table rule's otherwise; None for
    an exception nobody expected (shared by the compat error shapes, compat/edge.py)."""
    if isinstance(exc, ApiError):
        return exc
    rule = rule_of(type(exc))
    return None if rule is None else rule.answer(exc)


def as_api_error(exc: BaseException, scope: Scope) -> ApiError:
    """`api_error_of`, or a logged 500 that names nothing but the request id."""
    error = api_error_of(exc)
    if error is not None:
        return error
    log.error("unhandled error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
    return ApiError(500, "internal_error", "internal error; quote the request id")


# Protocols with an error shape of their own (the Open Inference Protocol's {"error": msg}, a
# seed's {"success": false, ...}) register how their paths render an error; every other path
# answers the envelope. Like the table, filled at import by the package that owns the shape.
Renderer = Callable[[ApiError], Response]
_RENDERERS: list[tuple[Callable[[str], bool], Renderer]] = []


def register_renderer(serves: Callable[[str], bool], render: Renderer) -> None:
    """`render` answers every error on a path for which `serves(path)` is true."""
    if all(existing is not render for _, existing in _RENDERERS):
        _RENDERERS.append((serves, render))


def error_response(error: ApiError, path: str = "") -> Response:
    for serves, render in _RENDERERS:
        if serves(path):
            return render(error)
    return JSON(
        envelope(error.code, error.message, request_id_var.get()),
        status_code=error.status,
        headers=error.headers,
    )


# The client left mid-body, or its body stalled and the server answered 408 already
# (shared.connection_guard): nobody reads this answer, and it is not our failure.
register(ClientDisconnect, 408, "request_timeout", "the request body did not arrive in full")
