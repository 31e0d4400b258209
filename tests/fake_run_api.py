"""A local stand-in for the Cloud Run Admin API v2 (an outside service we do not own):
it answers `POST /v2/projects/{p}/locations/{l}/jobs/{j}:run` like Google does, with a
long-running Operation, and records what it was asked."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.servers import free_port


class FakeRunApi:
    def __init__(self, fail_with: int | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_with = fail_with
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(
                    self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}"
                )
                path = self.path.split("?", 1)[0]
                api.calls.append({"path": path, "body": body})
                if api.fail_with is not None:
                    self._reply(
                        api.fail_with,
                        {
                            "error": {
                                "code": api.fail_with,
                                "status": "PERMISSION_DENIED",
                                "message": "caller lacks run.jobs.run",
                            }
                        },
                    )
                    return
                if not path.startswith("/v2/projects/") or not path.endswith(":run"):
                    self._reply(
                        404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}
                    )
                    return
                job = path.removeprefix("/v2/").removesuffix(":run")
                operation = job.rsplit("/jobs/", 1)[0] + f"/operations/op-{len(api.calls)}"
                self._reply(
                    200,
                    {
                        "name": operation,
                        "done": False,
                        "metadata": {
                            "@type": "type.googleapis.com/google.cloud.run.v2.Execution",
                            "name": f"{job}/executions/exec-{len(api.calls)}",
                        },
                    },
                )

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

    def __enter__(self) -> FakeRunApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
