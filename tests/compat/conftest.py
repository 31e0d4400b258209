"""Compat tests: the in-process gateway (`client`) with an admin key and small training
defaults; `admin` holds the headers an admin call sends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

ADMIN_KEY = "compat-tests-admin-key"
ADMIN = {"X-API-Key": ADMIN_KEY}
OTHER = {"X-Tenant-ID": "globex"}


@pytest.fixture(autouse=True)
def compat_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs before `client` (autouse fixtures come first), so its settings see these."""
    monkeypatch.setenv("ADMIN_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("TRAIN_SYMBOLS", "AAPL,MSFT")
    monkeypatch.setenv("TRAIN_LOOKBACK", "300")
    monkeypatch.delenv("MARKET_DATA_BASE_URL", raising=False)


async def eventually(
    read: Callable[[], Awaitable[httpx.Response]],
    done: Callable[[Any], bool],
    within: float = 20.0,
) -> Any:
    """Poll `read` until `done(json)`; the last JSON."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        body = (await read()).json()
        if done(body) or asyncio.get_running_loop().time() > deadline:
            return body
        await asyncio.sleep(0.05)
