"""CORS from CORS_ORIGINS: preflights answered by the edge, allowed origins echoed, others not."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import ConfigError, load_settings
from tests.edge import edge_client, error_code

APP = "https://app.example.com"
ORIGINS = {"CORS_ORIGINS": f"{APP}, http://localhost:3000"}
NEEDED = ["X-Tenant-ID", "X-API-Key", "Idempotency-Key", "X-Request-ID", "traceparent"]
NEEDED += ["Content-Type"]


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    # what a browser sends before a cross-origin POST with custom headers: no tenant, no body
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type,x-tenant-id,idempotency-key",
    }


async def test_preflight_from_an_allowed_origin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {**ORIGINS, "RATE_LIMIT_PER_MINUTE": "1"}
    async with edge_client(monkeypatch, tmp_path, env, headers={}) as client:
        for _ in range(3):  # preflights are not rate limited (and carry no tenant)
            answer = await client.options("/api/v1/models/m/predict", headers=preflight(APP))
            assert answer.status_code == 204, answer.text
            assert answer.headers["access-control-allow-origin"] == APP
            assert answer.headers["vary"] == "Origin"
            allowed = {
                h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")
            }
            assert {h.lower() for h in NEEDED} <= allowed
            assert "POST" in answer.headers["access-control-allow-methods"]
            assert int(answer.headers["access-control-max-age"]) > 0
            assert answer.headers["x-request-id"]
        local = await client.options("/api/v1/models", headers=preflight("http://localhost:3000"))
        assert local.headers["access-control-allow-origin"] == "http://localhost:3000"


async def test_preflight_from_another_origin_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with edge_client(monkeypatch, tmp_path, ORIGINS, headers={}) as client:
        for origin in ("https://evil.example.com", "https://app.example.com.evil.net", "null"):
            answer = await client.options("/api/v1/models", headers=preflight(origin))
            assert error_code(answer, 403) == "cors_origin_not_allowed"
            assert "access-control-allow-origin" not in answer.headers


async def test_actual_requests_echo_allowed_origins_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with edge_client(monkeypatch, tmp_path, ORIGINS) as client:
        ok = await client.get("/api/v1/models", headers={"Origin": APP})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == APP
        assert "X-Request-ID" in ok.headers["access-control-expose-headers"]
        # errors too: a browser must be able to read the envelope and its request id
        missing = await client.get("/api/v1/models/nope", headers={"Origin": APP})
        assert error_code(missing, 404) == "model_not_found"
        assert missing.headers["access-control-allow-origin"] == APP
        other = await client.get("/api/v1/models", headers={"Origin": "https://evil.example.com"})
        assert other.status_code == 200  # the browser, not the server, withholds the answer
        assert "access-control-allow-origin" not in other.headers
        plain = await client.get("/api/v1/models")
        assert "access-control-allow-origin" not in plain.headers
        # every answer depends on Origin, so a shared cache must key on it
        assert other.headers["vary"] == plain.headers["vary"] == "Origin"


async def test_without_cors_origins_there_is_no_cors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with edge_client(monkeypatch, tmp_path) as client:
        answer = await client.options("/api/v1/models", headers=preflight(APP))
        assert error_code(answer, 405) == "method_not_allowed"
        assert "access-control-allow-origin" not in answer.headers
        plain = await client.get("/api/v1/models", headers={"Origin": APP})
        assert "access-control-allow-origin" not in plain.headers


async def test_wildcard_allows_any_origin_off_prod(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with edge_client(monkeypatch, tmp_path, {"CORS_ORIGINS": "*"}) as client:
        answer = await client.options("/api/v1/models", headers=preflight("https://any.example"))
        assert answer.status_code == 204
        assert answer.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    "origins", ["https://app.example.com/", "app.example.com", "https://a.example.com/path"]
)
def test_malformed_origins_stop_the_start(monkeypatch: pytest.MonkeyPatch, origins: str) -> None:
    monkeypatch.setenv("CORS_ORIGINS", origins)
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        load_settings()


def test_wildcard_is_refused_in_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENV", "prod")
    monkeypatch.setenv("CORS_ORIGINS", "*")
    with pytest.raises(ConfigError, match=r"CORS_ORIGINS: '\*'"):
        load_settings()
