"""An in-process client of one ASGI app under a given environment (edge tests: admin key,
CORS, rate limit, logs, readiness), like the `client` fixture but with the settings a test
names."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp

from shared.runtime import reset_runtime
from shared.settings import reset_settings_cache

TENANT = {"X-Tenant-ID": "acme"}
# Edge settings a test may set; cleared first so the runner's environment never leaks in.
EDGE_VARIABLES = (
    "ADMIN_API_KEY",
    "CORS_ORIGINS",
    "RATE_LIMIT_PER_MINUTE",
    "LOG_LEVEL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "NATS_URL",
    "TENANT_AUTH",
    "TENANT_KEY_CACHE_SECONDS",
    "TENANT_KEY_CACHE_SIZE",
    "TENANT_KEYS_MAX",
    "METRICS_TOKEN",
    "METRICS_TENANT_LABELS",
)


@contextlib.asynccontextmanager
async def edge_client(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    env: dict[str, str] | None = None,
    app: ASGIApp | None = None,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway (or `app`) over memory:// with ENV=test, plus `env`."""
    for name in EDGE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    base = {
        "STATE_URL": "memory://",
        "MODEL_REGISTRY_URI": f"file://{tmp_path / 'registry'}",
        "EVENTS_DIR": str(tmp_path / "events"),
        "ENV": "test",
        "MAX_BODY_BYTES": "65536",
    }
    for name, value in {**base, **(env or {})}.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    await reset_runtime()
    if app is None:
        from functions.gateway import app as gateway

        app = gateway
    transport = httpx.ASGITransport(app=app)
    sent = TENANT if headers is None else headers
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=sent
        ) as c:
            yield c
    finally:
        await reset_runtime()
        reset_settings_cache()


def error_code(response: httpx.Response, status: int) -> str:
    """The envelope's code, after checking the status and the envelope itself."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["request_id"] == response.headers["x-request-id"]
    return str(error["code"])
