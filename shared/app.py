"""The function app: the HTTP edge (shared/edge/) bound to the process runtime
(shared/runtime.py), and the readiness check that reads both.

A module of its own so that neither of the two imports the other (architecture.md §2): the
runtime builds the services and knows nothing of HTTP, the edge serves requests and is given
the runtime as a callable; only this module, above both, joins them. Function groups build
their router here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared import hashseed
from shared.edge import function_app
from shared.edge.codec import JSON
from shared.edge.function_app import FunctionApp
from shared.registry.base import RegistryError
from shared.runtime import current_runtime
from shared.state import StateUnavailable
from shared.state.interfaces import Health


def build_router(group: str, routes: Sequence[Route]) -> FunctionApp:
    """One function group's ASGI app over this process's runtime (shared/edge/function_app.py)."""
    if _started_by_functions_framework():
        # served by its CLI rather than shared.server: fix the hash seed here, at import,
        # before any model is loaded (shared/hashseed.py)
        hashseed.ensure_fixed()
    return function_app.build_router(group, routes, services=current_runtime, ready=ready)


def _started_by_functions_framework() -> bool:
    script = os.path.basename(sys.argv[0]) if sys.argv else ""
    return script.replace("_", "-").startswith("functions-framework")


async def ready(request: Request) -> Response:
    """Readiness: the state store, the registry and the event bus answer (503 if not)."""
    ok, report = await readiness()
    return JSON(
        report,
        status_code=200 if ok else 503,
        headers=None if ok else {"Retry-After": "2"},
    )


async def readiness() -> tuple[bool, dict[str, object]]:
    """Whether the instance is ready, and the report /ready answers (also read by the Open
    Inference Protocol's /v2/health/ready)."""
    runtime = current_runtime()
    checks: dict[str, str] = {}
    try:
        health: Health = runtime.store
        await health.ping()
        checks["state"] = "ok"
    except StateUnavailable as exc:
        checks["state"] = str(exc)
    try:
        await runtime.registry.ping()
        checks["registry"] = "ok"
    except RegistryError as exc:
        checks["registry"] = f"unreachable: {exc}"
    # The bus exposes no NATS probe: NATS down is not "not ready" (the outbox keeps events),
    # so report the backlog, which grows while NATS is unreachable; reading it fails only
    # when the outbox (in the state store) does.
    events: dict[str, object] = {"bus": "nats" if runtime.settings.nats_url else "local-log"}
    try:
        events["backlog"] = await runtime.events.backlog()
        checks["events"] = "ok"
    except Exception as exc:
        checks["events"] = f"unreachable: {exc.__class__.__name__}"
    ok = all(v == "ok" for v in checks.values())
    # a degraded model is reported, not a reason to take the instance out of service
    degraded = runtime.degraded.summary(with_names=runtime.settings.env != "prod")
    return ok, {
        "status": "ready" if ok else "not_ready",
        "checks": checks,
        "details": {"events": events, "degraded_models": degraded},
    }
