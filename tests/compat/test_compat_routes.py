"""The compat surfaces as routes: documented under the "compat" tag, tenant-scoped and rate
limited at the seeds' bare paths too, never shadowing (or shadowed by) a core route."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from starlette.routing import Match, Route

from functions.gateway import routes
from shared import datasets_api

# what the groups mount of the compat surfaces (compat/) and the data set routes
COMPAT = [
    route
    for route in routes
    if route.endpoint.__module__.startswith("compat.")
    or route.endpoint.__module__ == datasets_api.__name__
]
SAMPLE = {"release": "v1", "version": "v1"}


def sample_path(route: Route) -> str:
    return re.sub(r"{(\w+)}", lambda m: SAMPLE.get(m.group(1), "sample1"), route.path)


def first_match(path: str, method: str) -> Route:
    scope = {"type": "http", "path": path, "method": method, "root_path": ""}
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    raise AssertionError(f"nothing serves {method} {path}")


def test_every_compat_route_is_mounted_and_wins_its_own_path() -> None:
    for route in COMPAT:
        assert route in routes
        for method in route.methods - {"HEAD"}:
            winner = first_match(sample_path(route), method)
            assert winner is route, f"{method} {route.path} is served by {winner.path}"


def test_compat_never_shadows_a_core_route() -> None:
    core = [r for r in routes if r not in COMPAT]
    for route in core:
        for method in route.methods - {"HEAD"}:
            path = sample_path(route)
            assert first_match(path, method) is route, f"{method} {route.path} is shadowed"


async def test_openapi_lists_them_under_compat(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for route in COMPAT:
        for method in route.methods - {"HEAD"}:
            operation = document["paths"][route.path][method.lower()]
            assert operation["tags"] in (["compat"], ["datasets"]), route.path
            assert any(p["name"] == "X-Tenant-ID" for p in operation["parameters"])
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    schemas = document["components"]["schemas"]
    assert {"OnlineAddIn", "EngineTrainIn", "MlPredictIn", "DatasetOut"} <= set(schemas)
    # one name, one model: a clash would make pydantic qualify names and break the $refs
    assert not [name for name in schemas if "__" in name]
    refs = re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document["paths"]))
    assert set(refs) <= set(schemas)


async def test_bare_seed_paths_need_the_tenant(client: httpx.AsyncClient) -> None:
    for path in ("/features?symbol=AAPL", "/models", "/monitoring/history"):
        answer = await client.get(path, headers={"X-Tenant-ID": "Not A Tenant"})
        assert answer.status_code == 400, path
        assert answer.json()["error"]["code"] == "invalid_tenant"


@pytest.fixture
def tight_rate_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "2")
    yield


async def test_bare_seed_paths_are_rate_limited(
    tight_rate_limit: None, client: httpx.AsyncClient
) -> None:
    statuses = [(await client.get("/features?symbol=AAPL")).status_code for _ in range(4)]
    assert statuses[0] == 200 and statuses[-1] == 429
