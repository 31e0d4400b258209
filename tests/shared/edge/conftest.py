"""Helpers for the edge's unit tests: settings from a given environment, and ASGI scopes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.types import Message, Scope

from shared.settings import Settings, load_settings
from tests.edge import EDGE_VARIABLES

MakeSettings = Callable[..., Settings]


@pytest.fixture
def make_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MakeSettings:
    """Settings as the edge would read them, with `env` on top of a test base."""

    def make(**env: str) -> Settings:
        for name in EDGE_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        base = {
            "STATE_URL": "memory://",
            "MODEL_REGISTRY_URI": f"file://{tmp_path / 'registry'}",
            "EVENTS_DIR": str(tmp_path / "events"),
            "ENV": "test",
            "MAX_BODY_BYTES": "65536",
        }
        for name, value in {**base, **env}.items():
            monkeypatch.setenv(name, value)
        return load_settings()

    return make


def scope_of(
    path: str = "/api/v1/models", method: str = "GET", headers: dict[str, str] | None = None
) -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in (headers or {}).items()],
    }


async def no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
