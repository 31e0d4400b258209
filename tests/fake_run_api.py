"""A local stand-in for the Cloud Run Admin API v2 (an outside service we do not own):
it answers `POST /v2/projects/{p}/locations/{l}/jobs/{j}:run` like Google does, with a
long-running Operation, and records what it was asked."""

from __future__ import annotations

from typing import Any

from tests.fake_http import FakeJsonService, Reply


class FakeRunApi(FakeJsonService):
    failure_body = {
        "error": {
            "code": 403,
            "status": "PERMISSION_DENIED",
            "message": "caller lacks run.jobs.run",
        }
    }

    def __init__(self, fail_with: int | None = None) -> None:
        super().__init__([str(fail_with)] * 100 if fail_with else None)
        self.calls: list[dict[str, Any]] = []

    def answer(self, method: str, path: str, body: dict[str, Any]) -> Reply:
        path = path.split("?", 1)[0]
        self.calls.append({"path": path, "body": body})
        if method != "POST" or not path.startswith("/v2/projects/") or not path.endswith(":run"):
            return 404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}
        job = path.removeprefix("/v2/").removesuffix(":run")
        operation = job.rsplit("/jobs/", 1)[0] + f"/operations/op-{len(self.calls)}"
        execution = f"{job}/executions/exec-{len(self.calls)}"
        metadata = {"@type": "type.googleapis.com/google.cloud.run.v2.Execution", "name": execution}
        return 200, {"name": operation, "done": False, "metadata": metadata}
