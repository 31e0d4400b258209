"""The HTTP edge every function shares: request ids, body limit, JSON in/out, error envelope.

Each function group builds its Starlette router with `build_router`; the functions-framework
entry point forwards the raw ASGI call to that router with `forward`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.context import choose_request_id, request_id_var, traceparent_var, valid_traceparent
from shared.errors import ApiError, envelope
from shared.openapi import docs_page, openapi_document
from shared.registry.base import ChecksumMismatch, RegistryUnavailable
from shared.settings import get_settings
from shared.state.base import Idempotency, StateUnavailable

log = logging.getLogger("ml.http")
ModelT = TypeVar("ModelT", bound=BaseModel)
Handler = Callable[[Request], Awaitable[Response]]


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity: a non-finite model output is reported as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def dump_json(data: Any) -> bytes:
    try:
        text = json.dumps(data, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(_finite(data), allow_nan=False, separators=(",", ":"))
    return text.encode()


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dump_json(content)


def error_response(error: ApiError) -> Response:
    return JSON(
        envelope(error.code, error.message, request_id_var.get()),
        status_code=error.status,
        headers=error.headers,
    )


async def read_body(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    body = await request.body()
    if not body.strip():
        raise ApiError(400, "empty_body", "the request body is empty; send a JSON object")
    return body


def _describe(exc: ValidationError) -> ApiError:
    first = exc.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return ApiError(400, "invalid_json", f"the body is not valid JSON: {first['msg']}")
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        parts.append(f"{where or 'body'}: {err['msg']}")
    return ApiError(422, "validation_error", "; ".join(parts))


async def parse_body(request: Request, model: type[ModelT]) -> ModelT:
    """Parse and validate a JSON body; bad JSON → 400, wrong shape → 422 naming the field."""
    body = await read_body(request)
    request.state.raw_body = body
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise _describe(exc) from None


async def optional_body(request: Request, model: type[ModelT]) -> ModelT:
    """Like parse_body, but an empty body means the model's defaults."""
    body = await request.body()
    request.state.raw_body = body
    if not body.strip():
        return model()
    return await parse_body(request, model)


class FunctionApp:
    """One function group as plain ASGI: request id, traceparent, body-size limit, routing
    and the error envelope. (Starlette's app stack is skipped on purpose: it costs more per
    request than a predict does.)"""

    def __init__(self, group: str, routes: Sequence[Route]) -> None:
        self.group = group
        self.routes = list(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        request_id = choose_request_id(_decode(headers.get(b"x-request-id")))
        request_id_var.set(request_id)
        traceparent_var.set(valid_traceparent(_decode(headers.get(b"traceparent"))))
        limit = get_settings().max_body_bytes
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)
            return message

        try:
            declared = headers.get(b"content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                raise _too_large(limit)
            await self._dispatch(scope, limited_receive, send_with_id)
        except Exception as exc:  # every failure leaves in the envelope, never a stack trace
            if not started:
                await error_response(_as_api_error(exc, scope))(scope, receive, send_with_id)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        allowed: Route | None = None
        for route in self.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                # call the endpoint directly: errors propagate to __call__ (the envelope)
                response = await route.endpoint(Request(scope, receive))
                await response(scope, receive, send)
                return
            if match is Match.PARTIAL and allowed is None:
                allowed = route
        method, path = scope["method"], scope["path"]
        if allowed is not None:
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}")
        raise ApiError(404, "route_not_found", f"no route {method} {path}")


def _as_api_error(exc: Exception, scope: Scope) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ChecksumMismatch):
        log.error("registry artifact failed its checksum: %s", exc)
        return ApiError(409, "checksum_mismatch", f"the stored artifact is corrupt: {exc}")
    if isinstance(exc, RegistryUnavailable):
        log.warning("registry unavailable: %s", exc)
        return ApiError(
            503,
            "registry_unavailable",
            "the model registry is unreachable; retry",
            {"Retry-After": "2"},
        )
    if isinstance(exc, StateUnavailable):
        log.warning("state store unavailable: %s", exc)
        return ApiError(
            503, "state_unavailable", "the state store is unreachable; retry", {"Retry-After": "1"}
        )
    log.error("unhandled error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc)
    return ApiError(500, "internal_error", "internal error; quote the request id")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _decode(raw: bytes | None) -> str | None:
    return raw.decode("latin-1") if raw is not None else None


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the body exceeds MAX_BODY_BYTES ({limit} bytes)")


async def health(request: Request) -> Response:
    return JSON({"status": "ok"})


async def metrics(request: Request) -> Response:
    """Prometheus exposition of this process's counters."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def build_router(group: str, routes: Sequence[Route]) -> FunctionApp:
    """One function group's ASGI app: its routes plus /health, /ready, /metrics, OpenAPI."""
    from shared.runtime import ready  # the runtime imports the state layer; keep http light

    get_settings()  # validate the configuration at start-up, not on the first request
    document = openapi_document(routes, f"online-ml {group}")

    async def openapi(request: Request) -> Response:
        return JSON(document)

    async def docs(request: Request) -> Response:
        return HTMLResponse(docs_page(document))

    common = [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    return FunctionApp(group, [*routes, *common])


class _Forward(Response):
    """A response that hands the whole ASGI call on to a router (functions-framework bridge)."""

    def __init__(self, router: ASGIApp) -> None:
        self.router = router
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router(scope, receive, send)


def forward(router: ASGIApp, request: Request) -> Response:
    """functions-framework gives us a Request; let our router answer the raw ASGI call."""
    return _Forward(router)


_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def idempotency_of(request: Request) -> Idempotency | None:
    """The request's Idempotency-Key with a hash of what it asks (call after parse_body)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.match(key):
        raise ApiError(
            400, "invalid_idempotency_key", "Idempotency-Key is 1-255 visible ASCII characters"
        )
    body: bytes = getattr(request.state, "raw_body", b"")
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode() + body).hexdigest()
    return Idempotency(key, digest)
