"""One JSON log line per request (request id, tenant, route, status, latency, trace id), and
OpenTelemetry spans when a tracer provider is installed."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared import tracing
from shared.app import build_router
from shared.edge.codec import JSON
from shared.logs import configure_logging
from tests.edge import edge_client
from tests.servers import ROOT

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """Capture our JSON log lines (root logger) in a buffer; back to stderr afterwards."""
    buffer = io.StringIO()
    configure_logging("INFO", buffer)
    yield buffer
    configure_logging("INFO", sys.stderr)


def records(buffer: io.StringIO, logger: str | None = "ml.access") -> list[dict[str, Any]]:
    for handler in logging.getLogger().handlers:
        handler.flush()  # lines of the current loop iteration leave at its end
    parsed = [json.loads(line) for line in buffer.getvalue().splitlines()]  # every line is JSON
    return [r for r in parsed if logger is None or r["logger"] == logger]


async def test_one_access_line_per_request(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lines: io.StringIO
) -> None:
    async with edge_client(monkeypatch, tmp_path) as client:
        headers = {"X-Request-ID": "req-123", "traceparent": TRACEPARENT}
        assert (await client.get("/api/v1/models", headers=headers)).status_code == 200
        await client.get("/api/v1/models/nope")  # 404 from the handler
        await client.get("/no/such/route")
        await client.get("/api/v1/models", headers={"X-Tenant-ID": "Bad Tenant"})
    first, missing, unrouted, bad = records(lines)
    assert first["request_id"] == "req-123" and first["trace_id"] == TRACE
    assert first["tenant"] == "acme" and first["method"] == "GET"
    assert first["route"] == first["path"] == "/api/v1/models"
    assert first["status"] == 200 and first["level"] == "INFO"
    assert isinstance(first["latency_ms"], float) and first["latency_ms"] > 0
    assert first["time"].endswith("Z") and first["time"][10] == "T"
    assert missing["status"] == 404 and missing["route"] == "/api/v1/models/{model}"
    assert missing["trace_id"] is None and len(missing["request_id"]) == 32  # minted
    assert unrouted["status"] == 404 and unrouted["route"] is None
    assert bad["status"] == 400 and bad["tenant"] is None  # only a valid tenant is logged


async def test_other_records_carry_the_request_they_were_logged_in(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lines: io.StringIO
) -> None:
    async def noisy(request: Request) -> Response:
        logging.getLogger("ml.test").warning("odd input", extra={"model": "m1"})
        return JSON({"ok": True})

    app = build_router("test", [Route("/noisy/{x}", noisy, methods=["GET"])])
    async with edge_client(monkeypatch, tmp_path, app=app) as client:
        headers = {"X-Request-ID": "req-9", "traceparent": TRACEPARENT}
        assert (await client.get('/noisy/a"b\\c\u00e9', headers=headers)).status_code == 200
    (warning,) = records(lines, "ml.test")
    assert warning["level"] == "WARNING" and warning["message"] == "odd input"
    assert warning["request_id"] == "req-9" and warning["trace_id"] == TRACE
    assert warning["model"] == "m1"
    (access,) = records(lines)
    assert access["path"] == '/noisy/a"b\\c\u00e9'  # client text is escaped, never breaks JSON


async def test_log_level_warning_drops_access_lines(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lines: io.StringIO
) -> None:
    async with edge_client(monkeypatch, tmp_path, {"LOG_LEVEL": "WARNING"}) as client:
        assert (await client.get("/api/v1/models")).status_code == 200
        assert records(lines) == []
    assert logging.getLogger().level == logging.WARNING


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    yield exporter
    tracing.use_provider(None)
    provider.shutdown()


async def test_spans_continue_the_callers_trace(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    lines: io.StringIO,
    spans: InMemorySpanExporter,
) -> None:
    async with edge_client(monkeypatch, tmp_path) as client:
        await client.get("/api/v1/models", headers={"traceparent": TRACEPARENT})
        await client.get("/api/v1/models/nope")  # no traceparent: a new trace
    joined, fresh = spans.get_finished_spans()
    assert joined.name == "GET /api/v1/models"
    assert f"{joined.context.trace_id:032x}" == TRACE
    assert joined.parent is not None and f"{joined.parent.span_id:016x}" == PARENT
    assert joined.attributes["http.route"] == "/api/v1/models"
    assert joined.attributes["http.response.status_code"] == 200
    assert joined.attributes["ml.tenant"] == "acme"
    assert fresh.parent is None and fresh.attributes["http.response.status_code"] == 404
    first, second = records(lines)
    assert first["trace_id"] == TRACE
    assert second["trace_id"] == f"{fresh.context.trace_id:032x}"  # the log names the span


@pytest.mark.parametrize(("endpoint", "traced"), [(None, False), ("http://127.0.0.1:9", True)])
def test_tracing_only_with_an_exporter(endpoint: str | None, traced: bool) -> None:
    """Unset, the edge has no tracer (one `is None` test per request); set, it has one that
    batches spans to the OTLP/HTTP exporter."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ENV": "test"}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    if endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    probe = (
        "import functions.gateway; from shared import tracing; "
        "print(tracing.TRACER is not None, type(tracing._provider).__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(traced), "TracerProvider" if traced else "NoneType"]


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def test_the_lines_of_one_loop_iteration_leave_in_one_write() -> None:
    stream = CountingStream()
    configure_logging("INFO", stream)
    try:
        log = logging.getLogger("ml.test")
        for i in range(3):
            log.info("step", extra={"i": i})
        assert stream.writes == 0  # not yet: more lines may come in this loop iteration
        await asyncio.sleep(0)
        assert stream.writes == 1
        assert [json.loads(line)["i"] for line in stream.getvalue().splitlines()] == [0, 1, 2]
        log.warning("now")  # warnings and errors never wait
        assert stream.writes == 2
        await asyncio.to_thread(log.info, "from a thread")  # nothing to batch with there
        assert stream.writes == 3
    finally:
        configure_logging("INFO", sys.stderr)
