"""A local stand-in for a Coinbase-style spot-price ticker (an outside service we do not own):
`GET /v2/prices/{pair}/spot` → `{"data": {"amount": "…", "base": …, "currency": …}}`, with a
script of failures (503s, hangs) to exercise retries and timeouts."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.servers import free_port


class FakeTicker:
    def __init__(self, prices: list[float], script: list[str] | None = None) -> None:
        """`script`: one entry per request, "ok", "503" or "hang"; then always "ok"."""
        self.prices = list(prices)
        self.script = list(script or [])
        self.requests: list[str] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        ticker = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                ticker.requests.append(self.path)
                action = ticker.script.pop(0) if ticker.script else "ok"
                if action == "hang":
                    time.sleep(1.0)
                    return
                if action != "ok":
                    self._reply(int(action), {"errors": [{"id": "unavailable"}]})
                    return
                parts = self.path.strip("/").split("/")
                if len(parts) != 4 or parts[:2] != ["v2", "prices"] or parts[3] != "spot":
                    self._reply(404, {"errors": [{"id": "not_found"}]})
                    return
                base, currency = parts[2].split("-")
                price = ticker.prices.pop(0) if len(ticker.prices) > 1 else ticker.prices[0]
                self._reply(200, {"data": {"amount": str(price), "base": base, "currency": currency}})

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        return Handler

    def __enter__(self) -> FakeTicker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
