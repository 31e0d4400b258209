"""A local stand-in for the upstream market-data service (an outside service we do not own):
`GET /v1/returns/{symbol}?limit=N` → `{"symbol", "data": [{"date", "return"}, ...]}`, oldest
first, with a script of failures (503, 429, hangs) to exercise retries and timeouts."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.fake_http import FakeJsonService, Reply


class FakeMarket(FakeJsonService):
    def __init__(self, returns: dict[str, list[float]], script: list[str] | None = None) -> None:
        """`script`: one entry per request, "ok", "503", "429" or "hang"; then always "ok"."""
        super().__init__(script)
        self.returns = returns

    def answer(self, method: str, path: str, body: dict[str, Any]) -> Reply:
        url = urlparse(path)
        parts = url.path.strip("/").split("/")
        if len(parts) != 3 or parts[:2] != ["v1", "returns"]:
            return 404, {"error": "no such route"}
        values = self.returns.get(parts[2])
        if values is None:
            return 404, {"error": f"unknown symbol {parts[2]}"}
        limit = int(parse_qs(url.query).get("limit", [len(values)])[0])
        rows = [{"date": f"day-{i:05d}", "return": value} for i, value in enumerate(values)]
        return 200, {"symbol": parts[2], "data": rows[-limit:]}
