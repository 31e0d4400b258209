"""Slow and idle clients against a real served process (`python -m shared.server`).

Before: ~1,100 idle sockets exhausted the process's 1,024 open files and every new connection
was reset, /health included; a half-sent header or a stalled body held its connection forever.
Now a header must arrive within HEADER_TIMEOUT_SECONDS, a body may not stall longer than
BODY_TIMEOUT_SECONDS (408 envelope), idle keep-alive connections close, and MAX_CONNECTIONS
(kept under the open-file limit) makes room by closing the connection waiting longest for a
header, shedding with a 503 envelope only when every connection carries a request.

No timing thresholds: every wait is a generous bound, and "the service still answers" is a
/health call completing while the abusive connections are open. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.security.conftest import assert_envelope, tenant_state
from tests.servers import AppProcess

TENANT = {"X-Tenant-ID": "acme"}
SPEC = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
IDLE_SOCKETS = 1_100
CONTAINER_OPEN_FILES = 1_024  # Docker's default soft RLIMIT_NOFILE: where the resets began
BOUND = 20.0  # seconds: a generous bound on any wait, never a measured threshold
FAST = {  # small deadlines so the cases end quickly; what is asserted is the outcome
    "HEADER_TIMEOUT_SECONDS": "1",
    "BODY_TIMEOUT_SECONDS": "1",
    "KEEPALIVE_TIMEOUT_SECONDS": "1",
}


@contextlib.contextmanager
def served(tmp: Path, env: dict[str, str], open_files: int | None = None) -> Iterator[AppProcess]:
    base = {
        "STATE_URL": "memory://",
        "MODEL_REGISTRY_URI": f"file://{tmp / 'registry'}",
        "EVENTS_DIR": str(tmp / "events"),
    }
    app = AppProcess({**base, **env}, log=tmp / "server.log", open_files=open_files)
    try:
        yield app.start()
    finally:
        app.stop()


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    with served(tmp_path_factory.mktemp("slow-fast"), FAST) as app:
        yield app


@pytest.fixture
async def api(fast: AppProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fast.url, headers=TENANT, timeout=BOUND) as client:
        yield client


async def health(url: str) -> None:
    """A new client's /health answers (its own connection)."""
    async with httpx.AsyncClient(timeout=BOUND) as client:
        response = await client.get(f"{url}/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def connect(app: AppProcess) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", app.port)


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (bounded wait)."""
    try:
        return await asyncio.wait_for(reader.read(), BOUND)
    except ConnectionResetError:
        return b""


def parse(raw: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, json.loads(body)


def assert_raw_envelope(raw: bytes, status: int, code: str) -> dict[str, str]:
    got, headers, body = parse(raw)
    assert got == status, raw[:300]
    error = body["error"]
    assert isinstance(error, dict) and error["code"] == code and error["request_id"], body
    assert headers["connection"] == "close"
    return headers


# --- a header that never completes: closed after HEADER_TIMEOUT_SECONDS ---------------------
@dataclass(frozen=True)
class Partial:
    name: str
    sent: bytes


PARTIAL_HEADERS = [
    Partial("idle socket, nothing sent", b""),
    Partial("half a header", b"POST /api/v1/models HTTP/1.1\r\nHost: x\r\nX-Tenant-ID: acme\r\n"),
    Partial("request line only, no CRLF", b"GET /health HTTP/1.1"),
]


@pytest.mark.parametrize("case", PARTIAL_HEADERS, ids=lambda c: c.name)
async def test_incomplete_header_is_closed(
    fast: AppProcess, api: httpx.AsyncClient, case: Partial
) -> None:
    before = await tenant_state(api)
    reader, writer = await connect(fast)
    writer.write(case.sent)
    await writer.drain()
    await health(fast.url)  # answered while the incomplete header holds its connection
    assert await closed_by_server(reader) == b""  # closed, nothing answered
    writer.close()
    assert await tenant_state(api) == before


async def test_slowloris_one_header_byte_at_a_time_is_closed(
    fast: AppProcess, api: httpx.AsyncClient
) -> None:
    """A byte every 0.25 s keeps the connection busy but never extends the header deadline."""
    header = b"POST /api/v1/models HTTP/1.1\r\nHost: x\r\nX-Tenant-ID: acme\r\nX-Pad: " + b"a" * 200
    before = await tenant_state(api)
    reader, writer = await connect(fast)
    closed = False
    for i, byte in enumerate(header):  # bounded: at most len(header) bytes, ~50 s
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            closed = True
            break
        if i == 4:
            await health(fast.url)  # answered while the slow header trickles in
        with contextlib.suppress(TimeoutError):
            if await asyncio.wait_for(reader.read(1), 0.25) == b"":
                closed = True
                break
    writer.close()
    assert closed, "the server kept a header that trickled in for the whole loop"
    assert await tenant_state(api) == before


async def test_header_over_max_header_bytes_is_431(api: httpx.AsyncClient) -> None:
    before = await tenant_state(api)
    response = await api.post("/api/v1/models", json=SPEC, headers={"X-Pad": "a" * 70_000})
    assert_envelope(response, 431, "header_too_large")
    assert "MAX_HEADER_BYTES" in response.json()["error"]["message"]
    assert await tenant_state(api) == before


async def test_header_still_arriving_over_max_header_bytes_is_431(fast: AppProcess) -> None:
    """A header that has not ended yet but is already too large is refused before it ends."""
    reader, writer = await connect(fast)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 70_000)
    await writer.drain()
    assert_raw_envelope(await closed_by_server(reader), 431, "header_too_large")
    writer.close()


# --- a body that stalls: 408 envelope after BODY_TIMEOUT_SECONDS ----------------------------
@dataclass(frozen=True)
class Stalled:
    name: str
    path: str
    body: bytes  # the whole body; the client sends only its first half


STALLED_BODIES = [
    Stalled("create", "/api/v1/models", json.dumps(SPEC).encode()),
    Stalled(
        "learn batch",
        "/api/v1/models/m/learn",
        json.dumps({"samples": [{"x": {"a": float(i)}, "y": 1.0} for i in range(200)]}).encode(),
    ),
]


@pytest.mark.parametrize("case", STALLED_BODIES, ids=lambda c: c.name)
async def test_stalled_body_is_408(fast: AppProcess, api: httpx.AsyncClient, case: Stalled) -> None:
    before = await tenant_state(api)
    reader, writer = await connect(fast)
    head = (
        f"POST {case.path} HTTP/1.1\r\nHost: x\r\nX-Tenant-ID: acme\r\nX-Request-ID: stall-1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(case.body)}\r\n\r\n"
    )
    writer.write(head.encode() + case.body[: len(case.body) // 2])
    await writer.drain()
    await health(fast.url)  # answered while the body is stalled
    headers = assert_raw_envelope(await closed_by_server(reader), 408, "request_timeout")
    assert headers["x-request-id"] == "stall-1"
    writer.close()
    assert await tenant_state(api) == before


async def test_body_after_an_early_answer_is_not_taken_for_a_header(fast: AppProcess) -> None:
    """413 on Content-Length before the body: the body bytes that follow are no header (no
    431 after the 413), and when they stall the connection is closed."""
    reader, writer = await connect(fast)
    writer.write(
        b"POST /api/v1/models HTTP/1.1\r\nHost: x\r\nX-Tenant-ID: acme\r\n"
        b"Content-Type: application/json\r\nContent-Length: 4000000\r\n\r\n"
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND)
    assert head.startswith(b"HTTP/1.1 413")
    with contextlib.suppress(ConnectionError):
        writer.write(b"[" * 200_000)  # body bytes, then nothing
        await writer.drain()
    rest = await closed_by_server(reader)
    assert b"HTTP/1.1" not in rest  # the 413's body only, no second response
    writer.close()


async def test_idle_keep_alive_connection_is_closed(fast: AppProcess) -> None:
    reader, writer = await connect(fast)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), BOUND)
    assert answer.startswith(b"HTTP/1.1 200")
    assert await closed_by_server(reader) == b""  # then idle: closed after the keep-alive
    writer.close()


# --- many connections ----------------------------------------------------------------------
async def test_1100_idle_sockets_do_not_stop_health(tmp_path: Path) -> None:
    """The container's 1,024 open files: the cap stays under it and idle sockets give way."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < IDLE_SOCKETS + 200:
        pytest.skip(f"this process may open only {hard} files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    idle: list[asyncio.StreamWriter] = []
    try:
        with served(tmp_path, {}, open_files=CONTAINER_OPEN_FILES) as app:
            for _ in range(IDLE_SOCKETS):  # bounded: 1,100 connections, nothing sent
                idle.append((await connect(app))[1])
            await asyncio.sleep(0.5)  # let the server accept them all
            for _ in range(3):
                await health(app.url)
    finally:
        for writer in idle:
            writer.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_over_max_connections_is_503_envelope_not_a_reset(tmp_path: Path) -> None:
    """Every connection carries a request (stalled bodies): a new one is shed with 503."""
    env = {
        "MAX_CONNECTIONS": "4",
        "STREAM_MAX_CLIENTS": "3",  # below the connection cap (checked at start-up)
        "BODY_TIMEOUT_SECONDS": "60",
        "HEADER_TIMEOUT_SECONDS": "60",
    }
    busy: list[asyncio.StreamWriter] = []
    with served(tmp_path, env) as app:
        async with httpx.AsyncClient(base_url=app.url, headers=TENANT, timeout=BOUND) as api:
            before = await tenant_state(api)
        body = json.dumps(SPEC).encode()
        head = (
            "POST /api/v1/models HTTP/1.1\r\nHost: x\r\nX-Tenant-ID: acme\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        for _ in range(4):
            _, writer = await connect(app)
            writer.write(head + body[:5])  # a request in flight: not evictable
            await writer.drain()
            busy.append(writer)
        await asyncio.sleep(0.5)  # let the server read those headers
        async with httpx.AsyncClient(base_url=app.url, headers=TENANT, timeout=BOUND) as api:
            shed = await api.post("/api/v1/models", json=SPEC)
            assert_envelope(shed, 503, "server_busy")
            assert shed.headers["retry-after"] == "1"
            for writer in busy:
                writer.close()
            for _ in range(100):  # bounded: until the server has seen the closes
                if (await api.get("/health")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert (await api.get("/health")).status_code == 200
            assert await tenant_state(api) == before
