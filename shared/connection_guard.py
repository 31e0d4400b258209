"""The HTTP/1.1 protocol of every served process: uvicorn's httptools protocol plus the
connection protections uvicorn lacks (README: Server protections).

- Header deadline: a connection must deliver a whole request header within
  HEADER_TIMEOUT_SECONDS of opening (or of the first byte of its next request when kept
  alive), else it is closed. One byte a second (slowloris) does not extend it.
- Body stall: a request body that sends nothing for BODY_TIMEOUT_SECONDS is answered 408 in
  the error envelope (or closed, if the response has started).
- Idle keep-alive: uvicorn's own timer, set to KEEPALIVE_TIMEOUT_SECONDS by shared.server.
- Connection cap: MAX_CONNECTIONS per process, kept under the open-file limit, so accept()
  never fails with EMFILE (which resets every new connection, /health included). At the cap the
  connection waiting longest for a request header (idle or slow) is closed to admit the new
  one; only when every connection carries a request is the new one shed with a 503 envelope
  and Retry-After, written before a lingering close so the client reads it instead of a reset.
- Header size: more than MAX_HEADER_BYTES before the header ends → 431 (httptools has no
  limit of its own).
- Shutdown: every request's scope carries a `ConnectionControl` (shared/edge/request.py).
  On shutdown its `shutting_down` event is set: a long-lived response (a Server-Sent Events
  stream) ends its own response with the last chunk, uvicorn then closes the connection
  (keep-alive is off once shutdown began), so the graceful shutdown is not held open until the
  process is killed; the client sees a clean end and reconnects elsewhere. `abort()` lets such
  a response drop a client that stopped reading.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import resource
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from shared.context import choose_request_id
from shared.edge.request import CONNECTION_KEY, ConnectionControl
from shared.errors import envelope
from shared.settings import get_settings

log = logging.getLogger("ml.server")

# File descriptors kept out of the connection budget: the app's own files, its Valkey, NATS
# and GCS connections, the executor's pipes.
FD_RESERVE = 128
# Shed connections linger (response written, input drained) at most this many at once and
# this long; past either, a shed connection is closed outright.
SHED_LINGER_MAX = 64
SHED_LINGER_SECONDS = 2.0
# A timer that fires this much past its due time means the event loop was blocked: bytes may
# be waiting unread, so the client gets this grace before being judged.
LATE_GRACE_SECONDS = 0.5


@dataclass(frozen=True)
class Limits:
    header_timeout: float
    body_timeout: float
    max_connections: int
    max_header_bytes: int


def connection_budget() -> int:
    """Connections this process can hold without accept() running out of descriptors."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1_000_000
    return max(1, soft - FD_RESERVE - SHED_LINGER_MAX)


@functools.lru_cache(maxsize=1)
def limits() -> Limits:
    """The protections of this process, read once from the settings."""
    settings = get_settings()
    cap = min(settings.max_connections, connection_budget())
    if cap < settings.max_connections:
        log.warning(
            "MAX_CONNECTIONS=%d is over what the open-file limit allows; capped at %d",
            settings.max_connections,
            cap,
        )
    return Limits(
        header_timeout=settings.header_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
        max_connections=cap,
        max_header_bytes=settings.max_header_bytes,
    )


def envelope_response(
    status: int,
    code: str,
    message: str,
    request_id: str,
    default_headers: list[tuple[bytes, bytes]],
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> bytes:
    """A complete `Connection: close` HTTP/1.1 response carrying the error envelope."""
    body = json.dumps(envelope(code, message, request_id), separators=(",", ":")).encode()
    headers = [
        *default_headers,
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
        (b"connection", b"close"),
        *extra,
    ]
    head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return STATUS_LINE[status] + head + b"\r\n" + body


class _Registry:
    """Per server: connections waiting for a request header (oldest first), shed ones."""

    def __init__(self) -> None:
        self.waiting: dict[GuardedHttpProtocol, None] = {}
        self.lingering: set[GuardedHttpProtocol] = set()
        self.shutting_down = asyncio.Event()  # the server began its graceful shutdown


def _registry(server_state: Any) -> _Registry:
    # uvicorn's ServerState is the one object all connections of a server share
    registry = getattr(server_state, "ml_connection_registry", None)
    if registry is None:
        registry = _Registry()
        server_state.ml_connection_registry = registry
    return registry


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header/body deadlines, a header cap and a
    connection cap that sheds with 503 (uvicorn: `http="shared.connection_guard:..."`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits()
        self.registry = _registry(self.server_state)
        self.header_timer: asyncio.TimerHandle | None = None
        self.header_due = 0.0
        self.header_bytes = 0  # read while waiting for a header end (that may never come)
        self.in_body = False  # a request body is still arriving
        self.body_timer: asyncio.TimerHandle | None = None
        self.body_due = 0.0
        self.shed = False
        self.control = ConnectionControl(self.registry.shutting_down, self._abort)

    # --- connection ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections and not self._evict_waiting():
            self._shed(transport)
            return
        super().connection_made(transport)
        self._wait_for_header(arm=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        self._stop_body_timer()
        self.registry.waiting.pop(self, None)
        self.registry.lingering.discard(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.shed:
            return  # drained unread: the 503 is already on its way
        waiting = self in self.registry.waiting
        if waiting:
            if self.header_timer is None and self.header_bytes == 0:
                # a kept-alive connection's next request: its deadline runs from this byte
                self.header_due = self.loop.time() + self.limits.header_timeout
            self.header_bytes += len(data)
        super().data_received(data)
        if waiting and self in self.registry.waiting and not self.transport.is_closing():
            # the header did not end in this read (timers only for those, not every request)
            if self.header_bytes > self.limits.max_header_bytes:
                self._refuse_header()
                return
            if self.header_timer is None:
                self.header_timer = self.loop.call_at(self.header_due, self._header_expired)
        if self.in_body and self.body_timer is None:
            self.body_timer = self.loop.call_at(self.body_due, self._body_expired)

    def shutdown(self) -> None:
        # long-lived responses end themselves (their last chunk): then uvicorn closes
        self.registry.shutting_down.set()
        super().shutdown()

    # --- request cycle ------------------------------------------------------------------
    def on_headers_complete(self) -> None:
        self.registry.waiting.pop(self, None)
        self._stop_header_timer()
        self.scope[CONNECTION_KEY] = self.control
        if self.header_bytes > self.limits.max_header_bytes and self._header_size() > (
            self.limits.max_header_bytes
        ):
            # a header that arrived whole in one read: this request is answered by the 431 app
            app, self.app = self.app, self._header_too_large
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        else:
            super().on_headers_complete()
        self.in_body = True  # until on_message_complete, which for a GET follows at once
        self.body_due = self.loop.time() + self.limits.body_timeout

    def _header_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def on_body(self, body: bytes) -> None:
        self.body_due = self.loop.time() + self.limits.body_timeout  # the timer re-reads it
        super().on_body(body)

    def on_message_complete(self) -> None:
        self.in_body = False
        self._stop_body_timer()
        super().on_message_complete()
        cycle = self.cycle
        if cycle is None or self.pipeline or self.transport.is_closing():
            return
        if cycle.response_complete:
            # answered before its body ended (e.g. 413 on Content-Length): idle from now on
            self._wait_for_header(arm=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        cycle = self.cycle
        if not cycle.response_complete or self.in_body or self.transport.is_closing():
            return  # a pipelined request runs, or the body still arrives (its deadline holds)
        # kept alive: uvicorn's keep-alive timer runs; the header deadline starts with the
        # next request's first byte (data_received)
        self._wait_for_header(arm=False)

    # --- header deadline ----------------------------------------------------------------
    def _wait_for_header(self, *, arm: bool) -> None:
        self.registry.waiting.pop(self, None)
        self.registry.waiting[self] = None  # newest last: eviction takes the oldest
        self.header_bytes = 0
        if arm:
            self._stop_header_timer()
            self._arm_header(self.limits.header_timeout)

    def _arm_header(self, delay: float) -> None:
        self.header_due = self.loop.time() + delay
        self.header_timer = self.loop.call_at(self.header_due, self._header_expired)

    def _stop_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _header_expired(self) -> None:
        self.header_timer = None
        if self.loop.time() - self.header_due > LATE_GRACE_SECONDS:
            self._arm_header(LATE_GRACE_SECONDS)  # the loop was blocked: read what waited
            return
        self._close()

    def _header_too_large_message(self) -> str:
        limit = self.limits.max_header_bytes
        return f"the request line and headers exceed {limit} bytes (MAX_HEADER_BYTES)"

    def _refuse_header(self) -> None:
        """The header is still arriving and is already too large."""
        self._answer_and_close(431, "header_too_large", self._header_too_large_message())

    async def _header_too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The header arrived whole but too large: 431 before the app sees it."""
        sent = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = choose_request_id(sent or None)
        body = json.dumps(
            envelope("header_too_large", self._header_too_large_message(), request_id),
            separators=(",", ":"),
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 431, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _evict_waiting(self) -> bool:
        """Close the connection waiting longest for a request header; False if none is."""
        oldest = next(iter(self.registry.waiting), None)
        if oldest is None:
            return False
        oldest._close()
        return True

    def _close(self) -> None:
        """Close now; the connection stops counting against the cap at once."""
        self._stop_header_timer()
        self._stop_body_timer()
        self.registry.waiting.pop(self, None)
        self.connections.discard(self)
        if not self.transport.is_closing():
            self.transport.close()

    def _abort(self) -> None:
        """Drop the connection at once: a client that stopped reading never lets close() flush."""
        self._close()
        self.transport.abort()

    # --- body stall ---------------------------------------------------------------------
    def _stop_body_timer(self) -> None:
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None

    def _body_expired(self) -> None:
        self.body_timer = None
        if not self.in_body:
            return
        now = self.loop.time()
        if self.flow is not None and self.flow.read_paused:
            # we stopped reading (the app has not consumed what came): not the client's stall
            self.body_due = now + self.limits.body_timeout
        elif now - self.body_due > LATE_GRACE_SECONDS:
            self.body_due = now + LATE_GRACE_SECONDS  # the loop was blocked: read what waited
        if now < self.body_due:
            self.body_timer = self.loop.call_at(self.body_due, self._body_expired)
            return
        cycle = self.cycle
        if cycle is None or cycle.response_started or self.transport.is_closing():
            self._close()
            return
        # The app sees a disconnect and its own answer is dropped: this 408 is the response.
        cycle.response_started = cycle.response_complete = cycle.disconnected = True
        cycle.message_event.set()
        sent = dict(cycle.scope["headers"]).get(b"x-request-id", b"")
        self._answer_and_close(
            408,
            "request_timeout",
            f"the request body sent nothing for {self.limits.body_timeout:g} s "
            "(BODY_TIMEOUT_SECONDS); send it again",
            choose_request_id(sent.decode("latin-1") or None),
        )

    def _answer_and_close(
        self, status: int, code: str, message: str, request_id: str | None = None
    ) -> None:
        response = envelope_response(
            status,
            code,
            message,
            request_id or choose_request_id(None),
            self.server_state.default_headers,
        )
        self.transport.write(response)
        log.info("%d %s from %s", status, code, self.client)
        self._close()

    # --- shedding over the cap ----------------------------------------------------------
    def _shed(self, transport: asyncio.Transport) -> None:
        """503 in the envelope, then a lingering close: FIN after the response, the client's
        request read and dropped, so it reads the 503 rather than a reset."""
        self.shed = True
        self.transport = transport
        response = envelope_response(
            503,
            "server_busy",
            "this instance is at its connection limit (MAX_CONNECTIONS); retry shortly",
            choose_request_id(None),
            self.server_state.default_headers,
            ((b"retry-after", b"1"),),
        )
        transport.write(response)
        if len(self.registry.lingering) >= SHED_LINGER_MAX or not transport.can_write_eof():
            transport.close()
            return
        self.registry.lingering.add(self)
        transport.write_eof()
        self.loop.call_later(SHED_LINGER_SECONDS, transport.close)
