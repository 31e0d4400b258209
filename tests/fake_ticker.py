"""A local stand-in for a Coinbase-style spot-price ticker (an outside service we do not own):
`GET /v2/prices/{pair}/spot` → `{"data": {"amount": "…", "base": …, "currency": …}}`."""

from __future__ import annotations

from typing import Any

from tests.fake_http import FakeJsonService, Reply


class FakeTicker(FakeJsonService):
    failure_body = {"errors": [{"id": "unavailable"}]}

    def __init__(self, prices: list[float], script: list[str] | None = None) -> None:
        """Answers the prices in turn (the last one repeats); `script` injects failures."""
        super().__init__(script)
        self.prices = list(prices)

    def answer(self, method: str, path: str, body: dict[str, Any]) -> Reply:
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["v2", "prices"] or parts[3] != "spot":
            return 404, {"errors": [{"id": "not_found"}]}
        base, currency = parts[2].split("-")
        price = self.prices.pop(0) if len(self.prices) > 1 else self.prices[0]
        return 200, {"data": {"amount": str(price), "base": base, "currency": currency}}
