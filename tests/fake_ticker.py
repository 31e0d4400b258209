"""A local stand-in for a Coinbase-style spot-price ticker (an outside service we do not own):
`GET /v2/prices/{pair}/spot` → `{"data": {"amount": "…", "base": …, "currency": …}}`."""

from __future__ import annotations

from typing import Any

import pytest

from shared.settings import reset_settings_cache
from tests.fake_http import FakeJsonService, Reply


def allowed_entry(port: int) -> str:
    """The TICKER_ALLOWED_HOSTS entry of a fake service on this loopback port (plain http)."""
    return f"http://127.0.0.1:{port}"


def allow_fake_hosts(monkeypatch: pytest.MonkeyPatch, *ports: int) -> None:
    """Allow fake services on these loopback ports besides the default host; the settings
    are re-read, so call it before the app builds its runtime (before its first request)."""
    entries = ["api.coinbase.com", *(allowed_entry(p) for p in ports)]
    monkeypatch.setenv("TICKER_ALLOWED_HOSTS", ",".join(entries))
    reset_settings_cache()


class FakeTicker(FakeJsonService):
    failure_body = {"errors": [{"id": "unavailable"}]}

    def __init__(
        self, prices: list[float], script: list[str] | None = None, port: int | None = None
    ) -> None:
        """Answers the prices in turn (the last one repeats); `script` injects failures;
        `port`: one allowed beforehand (the `ticker_port` fixture)."""
        super().__init__(script, port)
        self.prices = list(prices)

    def answer(self, method: str, path: str, body: dict[str, Any]) -> Reply:
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["v2", "prices"] or parts[3] != "spot":
            return 404, {"errors": [{"id": "not_found"}]}
        base, currency = parts[2].split("-")
        price = self.prices.pop(0) if len(self.prices) > 1 else self.prices[0]
        return 200, {"data": {"amount": str(price), "base": base, "currency": currency}}


class RedirectingTicker(FakeTicker):
    """An allowed host that answers every price with a redirect to `location`."""

    def __init__(self, location: str, status: int = 302, port: int | None = None) -> None:
        super().__init__([1.0], port=port)
        self.location, self.status = location, status

    def answer(self, method: str, path: str, body: dict[str, Any]) -> Reply:
        return self.status, {}, {"Location": self.location}
