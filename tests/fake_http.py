"""The shared scaffold of our stand-ins for outside services (a ticker, a market-data API,
the Cloud Run Admin API): a threaded JSON HTTP server on a free loopback port, with a script
of failures ("503", "429", "hang") played one per request before answering normally."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.servers import free_port

# (status, JSON body) or (status, JSON body, extra headers) e.g. a redirect's Location
Reply = tuple[int, dict[str, Any]] | tuple[int, dict[str, Any], dict[str, str]]


class FakeJsonService:
    """Subclasses implement `answer(method, path, body)`; `script` injects failures first."""

    failure_body: dict[str, Any] = {"error": "unavailable"}
    hang_seconds = 1.0  # longer than any client timeout the tests set

    def __init__(self, script: list[str] | None = None, port: int | None = None) -> None:
        """`port`: one reserved beforehand (e.g. allowed in TICKER_ALLOWED_HOSTS)."""
        self.script = list(script or [])
        self.requests: list[str] = []
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, method: str, path: str, body: dict[str, Any]) -> Reply:
        raise NotImplementedError

    def _respond(self, method: str, path: str, body: dict[str, Any]) -> Reply | None:
        self.requests.append(path)
        action = self.script.pop(0) if self.script else "ok"
        if action == "hang":
            time.sleep(self.hang_seconds)
            return None
        if action != "ok":
            return int(action), self.failure_body
        return self.answer(method, path, body)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                reply = service._respond(method, self.path, body)
                if reply is None:
                    return
                status, payload, *extra = reply
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        return Handler

    def __enter__(self) -> FakeJsonService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
