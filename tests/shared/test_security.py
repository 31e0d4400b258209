"""Admin routes need X-API-Key (constant-time compare) per ENV profile; prod refuses unsafe
settings at start-up."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.routing import Route

from shared.security import admin_prefixes
from shared.settings import ConfigError, load_settings
from tests.edge import edge_client, error_code
from tests.servers import ROOT

KEY = "k3y-0123456789abcdef"  # long enough for ENV=prod
RELOAD = "/api/v1/admin/reload"
GROUPS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/main.py"))

# (ENV, ADMIN_API_KEY or None, X-API-Key sent or None, status, error code or None)
TABLE = [
    ("test", KEY, None, 401, "missing_api_key"),
    ("test", KEY, "wrong", 403, "invalid_api_key"),
    ("test", KEY, KEY[:-1], 403, "invalid_api_key"),
    ("test", KEY, KEY + "x", 403, "invalid_api_key"),
    ("test", KEY, "", 403, "invalid_api_key"),
    ("test", KEY, KEY, 200, None),
    ("test", None, None, 403, "admin_disabled"),
    ("test", None, KEY, 403, "admin_disabled"),
    ("test", "  ", "", 403, "admin_disabled"),  # a blank ADMIN_API_KEY is no key at all
    ("prod", None, None, 403, "admin_disabled"),
    ("prod", None, "anything", 403, "admin_disabled"),
    ("prod", KEY, None, 401, "missing_api_key"),
    ("prod", KEY, KEY, 200, None),
    ("dev", None, None, 200, None),  # `make run`: admin open without a configured key
    ("dev", KEY, None, 401, "missing_api_key"),  # ...but a configured key is always required
    ("dev", KEY, KEY, 200, None),
]


@pytest.mark.parametrize(("env", "configured", "sent", "status", "code"), TABLE)
async def test_admin_key_table(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    env: str,
    configured: str | None,
    sent: str | None,
    status: int,
    code: str | None,
) -> None:
    settings = {"ENV": env} | ({"ADMIN_API_KEY": configured} if configured is not None else {})
    # the admin key alone: prod's tenant keys (and their need of ADMIN_API_KEY) are
    # tests/security/test_keys.py's
    settings["TENANT_AUTH"] = "none"
    headers = {"X-API-Key": sent} if sent is not None else {}
    async with edge_client(monkeypatch, tmp_path, settings) as client:
        response = await client.post(RELOAD, headers=headers)
        if code is None:
            assert response.status_code == status, response.text
        else:
            assert error_code(response, status) == code
        # the key guards admin routes only
        assert (await client.get("/api/v1/models")).status_code == 200


def admin_routes() -> list[tuple[str, str, str]]:
    """(group, method, path) of every admin route that any function group serves: under
    /api/v1/admin/, or under another `.../admin/` prefix (the seed-compatible surfaces)."""
    found = []
    for group in GROUPS:
        module = importlib.import_module(f"functions.{group}.main")
        for route in module.ROUTES:
            if isinstance(route, Route) and "/admin/" in route.path:
                for method in sorted((route.methods or set()) - {"HEAD"}):
                    found.append((group, method, route.path))
    return found


def test_the_admin_routes_are_found() -> None:
    found = admin_routes()
    assert ("activate", "POST", RELOAD) in found
    for group, _, path in found:  # each is under an admin prefix its group's edge guards
        assert path.startswith(
            importlib.import_module(f"functions.{group}.main").router.admin_prefixes
        )


def test_admin_prefixes_are_literal_admin_segments() -> None:
    paths = ["/api/v1/engine/admin/train", "/admin/reload", "/api/v1/models/{model}/admin/x"]
    assert admin_prefixes(paths) == ("/admin/", "/api/v1/admin/", "/api/v1/engine/admin/")


async def test_a_model_named_admin_is_no_admin_route(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with edge_client(monkeypatch, tmp_path, {"ADMIN_API_KEY": KEY}) as client:
        spec = {"name": "admin", "steps": [{"kind": "linear_regression"}]}
        assert (await client.post("/api/v1/models", json=spec)).status_code == 201
        answer = await client.post("/api/v1/models/admin/predict", json={"x": {"a": 1.0}})
        assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(("group", "method", "path"), admin_routes())
async def test_every_admin_route_of_every_group_needs_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, group: str, method: str, path: str
) -> None:
    """Each group as deployed alone (its own router): the edge guards the whole prefix."""
    router = importlib.import_module(f"functions.{group}.main").router
    async with edge_client(monkeypatch, tmp_path, {"ADMIN_API_KEY": KEY}, app=router) as client:
        assert error_code(await client.request(method, path), 401) == "missing_api_key"
        wrong = await client.request(method, path, headers={"X-API-Key": "nope"})
        assert error_code(wrong, 403) == "invalid_api_key"
        # past the key: the handler answers (placeholder path values may be a 4xx of its own)
        right = await client.request(method, path, headers={"X-API-Key": KEY})
        assert right.status_code < 500 and right.status_code not in (401, 403), right.text
    prod_without_key = {"ENV": "prod", "TENANT_AUTH": "none"}  # keys would refuse to start
    async with edge_client(monkeypatch, tmp_path, prod_without_key, app=router) as client:
        assert error_code(await client.request(method, path), 403) == "admin_disabled"


async def test_an_unknown_admin_path_reveals_nothing_without_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with edge_client(monkeypatch, tmp_path, {"ADMIN_API_KEY": KEY}) as client:
        assert error_code(await client.get("/api/v1/admin/nothing"), 401) == "missing_api_key"
        found = await client.get("/api/v1/admin/nothing", headers={"X-API-Key": KEY})
        assert error_code(found, 404) == "route_not_found"


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS"),
        ({"CORS_ORIGINS": "https://app.example.com,*"}, "CORS_ORIGINS"),
        ({"ADMIN_API_KEY": "short"}, "ADMIN_API_KEY"),
    ],
)
def test_prod_refuses_unsafe_settings(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], named: str
) -> None:
    monkeypatch.setenv("ENV", "prod")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=named):
        load_settings()
    monkeypatch.setenv("ENV", "test")  # the same values are fine off prod
    load_settings()


def test_prod_with_safe_settings_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENV", "prod")
    monkeypatch.setenv("CORS_ORIGINS", "https://app.example.com, http://localhost:3000")
    monkeypatch.setenv("ADMIN_API_KEY", KEY)
    settings = load_settings()
    assert settings.cors_origin_list == ("https://app.example.com", "http://localhost:3000")


def test_a_prod_process_with_wildcard_cors_exits_naming_the_variable() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ENV": "prod", "CORS_ORIGINS": "*"}
    done = subprocess.run(
        [sys.executable, "-c", "import functions.gateway"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "CORS_ORIGINS" in done.stderr and "Traceback" not in done.stderr
