"""Fuzz the whole gateway from its own OpenAPI document (schemathesis, in-process ASGI).

Valid and invalid requests (both generation modes) for every operation: never a 5xx, every
error in the envelope {"error": {"code", "message", "request_id"}}, every response as
documented. Derandomized and bounded, so a failure reproduces and CI time stays flat.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.python.asgi import _get_portal
from schemathesis.specs.openapi import checks as openapi_checks

from functions.gateway import app
from shared.runtime import reset_runtime
from shared.settings import reset_settings_cache


@schemathesis.check
def error_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx is {"error": {"code", "message", "request_id"}}, the id = X-Request-ID;
    under /v2 (the Open Inference Protocol) it is OIP's own {"error": "<message>"}."""
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{response.status_code} without a JSON body") from None
    error = body.get("error") if isinstance(body, dict) else None
    if case.path == "/v2" or case.path.startswith("/v2/"):
        assert isinstance(error, str) and set(body) == {"error"}, f"not OIP's shape: {body!r}"
        return True
    assert isinstance(error, dict), f"{response.status_code} outside the envelope: {body!r}"
    assert {"code", "message", "request_id"} <= error.keys(), f"incomplete envelope: {error}"
    assert error["request_id"] == response.headers["x-request-id"][0]
    return True


@schemathesis.check
def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, except 502 `upstream_unavailable`: the right answer of a route that calls an
    outside service (a ticker), which this offline test refuses to reach."""
    if response.status_code == 502 and b'"upstream_unavailable"' in response.content:
        return True
    assert response.status_code < 500, f"server error {response.status_code}: {response.text}"
    return True


# Not `negative_data_rejection`: pydantic's lax mode (0 for false) and optional bodies let some
# schema-violating requests succeed by design; they are still sent and must never cause a 5xx.
CHECKS = [
    no_server_error,
    error_envelope,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


_LOCAL_HOSTS = ("localhost", "127.", "::1", "testserver")


@pytest.fixture(scope="module", autouse=True)
def gateway_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One gateway over memory:// for every operation (what one creates, the next may find),
    set up as the `client` fixture does, and offline: generated data names hosts and URLs,
    and nothing may leave this machine (a lookup or a connection to anything but loopback
    fails at once, as with no network)."""
    data = tmp_path_factory.mktemp("fuzz")
    lookup, connect = socket.getaddrinfo, socket.socket.connect

    def local_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if not name.startswith(_LOCAL_HOSTS):
            raise socket.gaierror(socket.EAI_NONAME, f"offline test: no lookup of {name}")
        return lookup(host, *args, **kwargs)

    def local_connect(sock: socket.socket, address: Any) -> None:
        host = str(address[0]) if isinstance(address, tuple) else ""
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not host.startswith(_LOCAL_HOSTS):
            raise ConnectionRefusedError(f"offline test: no connection to {host}")
        connect(sock, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", local_lookup)
        patch.setattr(socket.socket, "connect", local_connect)
        patch.setenv("STATE_URL", "memory://")
        patch.setenv("MODEL_REGISTRY_URI", f"file://{data / 'registry'}")
        patch.setenv("EVENTS_DIR", str(data / "events"))
        patch.setenv("ENV", "test")
        patch.setenv("MAX_BODY_BYTES", "65536")
        patch.setenv("LOG_LEVEL", "WARNING")  # thousands of requests: no access lines
        for name in ("ADMIN_API_KEY", "CORS_ORIGINS", "RATE_LIMIT_PER_MINUTE", "NATS_URL"):
            patch.delenv(name, raising=False)
        reset_settings_cache()
        yield
        # The app ran on schemathesis' event-loop thread: close the runtime on that loop.
        _get_portal().call(reset_runtime)
        reset_settings_cache()


# The edge reads the settings per request, so loading the document at collection is harmless.
# A stream never ends: its contract is tested against real servers (tests/functions/monitoring/
# test_stream.py), not by a fuzzer that waits for the whole body.
schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/api/v1/stream/events")
# A fixed budget of ~2,000 examples per mode for the whole gateway (~30 s on 2 cores), however
# many routes the groups add: 10 to 30 per operation and mode.
MAX_EXAMPLES = max(10, min(30, 2000 // len(list(schema.get_all_operations()))))


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_gateway_against_its_openapi(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)
