"""`FunctionApp`: one function group as plain ASGI — the edge steps, the router, the error
envelope, one span and one access-log line per request — and `build_router`, which adds the
operational endpoints. (Starlette's app stack is skipped on purpose: it costs more per
request than a predict.)"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from shared import tracing
from shared.context import request_id_var, traceparent_var
from shared.deadline import deadline_var
from shared.edge.endpoints import operational_routes
from shared.edge.errors import as_api_error, error_response, log
from shared.edge.request import EdgeRequest
from shared.edge.router import ROUTE_KEY, RouteIndex, ScopedPaths
from shared.edge.steps import EdgeStep, Services, check_steps, context_steps
from shared.logs import ACCESS, configure_logging, log_access, trace_id_of
from shared.metrics_auth import warn_if_closed
from shared.monitoring.prometheus import observe_request
from shared.openapi import openapi_document
from shared.security import admin_prefixes
from shared.settings import Settings, get_settings


class _Exchange:
    """One request's response side: appends the edge's headers and remembers the status."""

    __slots__ = ("extra", "send", "status")

    def __init__(self, send: Send, extra: list[tuple[bytes, bytes]]) -> None:
        self.send = send
        self.extra = extra
        self.status = 0  # 0 until the response has started

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message["headers"] = [*message.get("headers", []), *self.extra]
        await self.send(message)


class _Steps:
    """The step lists composed for one Settings object (rebuilt if the settings change)."""

    __slots__ = ("checks", "context", "settings")

    def __init__(self, settings: Settings, services: Services) -> None:
        self.settings = settings
        self.context = context_steps(settings)
        self.checks = check_steps(settings, services)


class FunctionApp:
    """One function group as plain ASGI over its routes; `services` is the runtime, called
    per request (it is built on first use, once per event loop)."""

    def __init__(self, group: str, routes: Sequence[Route], services: Services) -> None:
        self.group = group
        self.routes = list(routes)
        self.router = RouteIndex(self.routes)
        self.scoped_paths = ScopedPaths(self.routes)
        self.admin_prefixes = admin_prefixes(r.path for r in self.routes)
        self._services = services
        self._steps: _Steps | None = None

    def _is_admin_path(self, path: str) -> bool:
        return path.startswith(self.admin_prefixes)  # every admin route of the group

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _lifespan(receive, send)
            return
        began = time.perf_counter()
        settings = get_settings()
        steps = self._steps
        if steps is None or steps.settings is not settings:  # start-up, or tests swapped them
            _configure_process(settings)
            steps = self._steps = _Steps(settings, self._services)
        request = EdgeRequest(scope, receive, self._is_admin_path, self.scoped_paths)
        for step in steps.context:  # these never refuse (nor await)
            step(request)
        exchange = _Exchange(send, request.response_headers)
        tracer = tracing.TRACER
        try:
            if tracer is None:
                await self._serve(request, steps.checks, exchange)
                traceparent = request.traceparent
            else:
                traceparent = await self._traced(tracer, request, steps.checks, exchange)
        finally:
            # an in-process client (tests) runs the app in its own context
            if request.deadline is not None:
                deadline_var.reset(request.deadline)
        route = scope.get(ROUTE_KEY)
        elapsed = time.perf_counter() - began
        observe_request(
            route.path if route is not None else "unmatched",
            request.method,
            exchange.status,
            elapsed,
        )
        if ACCESS.isEnabledFor(logging.INFO):
            log_access(
                request.request_id,
                request.api_tenant,
                request.method,
                route.path if route is not None else None,
                scope["path"],
                exchange.status,
                elapsed * 1000,
                trace_id_of(traceparent),
            )

    async def _serve(
        self, request: EdgeRequest, checks: Sequence[EdgeStep], exchange: _Exchange
    ) -> None:
        """The checks, then the route; any failure leaves in the envelope."""
        scope, receive = request.scope, request.receive  # the edge's own answers read no body
        try:
            for step in checks:
                answer = await step(request) if step.awaits else step(request)
                if answer is not None:
                    await answer(scope, receive, exchange)
                    return
            await self.router.dispatch(scope, request.receive, exchange)  # the bounded body
        except Exception as exc:  # every failure leaves in the envelope, never a stack trace
            if not exchange.status:
                answer = error_response(as_api_error(exc, scope), request.path)
                await answer(scope, receive, exchange)
            else:  # the response is already on its way: all that is left is to say so
                log.error("failed after the response started", exc_info=exc)

    async def _traced(
        self,
        tracer: Any,
        request: EdgeRequest,
        checks: Sequence[EdgeStep],
        exchange: _Exchange,
    ) -> str:
        """_serve inside one SERVER span that continues the caller's traceparent; returns the
        span's own traceparent (for the access log)."""
        from opentelemetry.trace import SpanKind, Status, StatusCode

        scope, method = request.scope, request.method
        context = tracing.parent_context(traceparent_var.get())
        with tracer.start_as_current_span(method, context=context, kind=SpanKind.SERVER) as span:
            own = tracing.traceparent_of(span)
            traceparent_var.set(own)  # events and logs downstream carry this span
            await self._serve(request, checks, exchange)
            route = scope.get(ROUTE_KEY)
            if route is not None:
                span.update_name(f"{method} {route.path}")
                span.set_attribute("http.route", route.path)
            span.set_attribute("http.request.method", method)
            span.set_attribute("url.path", scope["path"])
            span.set_attribute("http.response.status_code", exchange.status)
            span.set_attribute("ml.request_id", request_id_var.get())
            if request.api_tenant is not None:
                span.set_attribute("ml.tenant", request.api_tenant)
            if exchange.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        return own


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


_configured_for: Settings | None = None


def _configure_process(settings: Settings) -> None:
    """Logging and tracing, once per process (the gateway builds one router per group)."""
    global _configured_for
    if _configured_for is not settings:
        _configured_for = settings
        configure_logging(settings.log_level)
        tracing.configure_tracing(settings)
        warn_if_closed(settings)


def build_router(
    group: str,
    routes: Sequence[Route],
    *,
    services: Services,
    ready: Callable[[Request], Awaitable[Response]],
) -> FunctionApp:
    """One function group's ASGI app: its routes plus /health, /ready, /metrics, OpenAPI.
    `services` and `ready` come from the runtime (shared/app.py joins the two)."""
    settings = get_settings()  # validate the configuration at start-up, not on first request
    _configure_process(settings)
    document = openapi_document(routes, f"online-ml {group}")
    return FunctionApp(group, [*routes, *operational_routes(ready, document)], services)
