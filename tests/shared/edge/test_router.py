"""The route index: static paths by dict lookup, parameterised routes in order, and the same
answers as Starlette's ordered matching (first full match wins, else 405, else 404)."""

from __future__ import annotations

import json

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message

from shared.edge.codec import JSON
from shared.edge.request import EdgeRequest
from shared.edge.router import ROUTE_KEY, RouteIndex, ScopedPaths, TenantScopedRoute
from shared.errors import ApiError
from tests.shared.edge.conftest import no_body, scope_of


def _answer(name: str):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        return JSON({"route": name, "params": dict(request.path_params)})

    endpoint.__name__ = name
    return endpoint


ROUTES = [
    Route("/api/v1/models", _answer("list"), methods=["GET"]),
    Route("/api/v1/models", _answer("create"), methods=["POST"]),
    # a parameterised route before a static path it also matches: it wins, as in Starlette
    Route("/api/v1/jobs/{job}", _answer("job"), methods=["GET"]),
    Route("/api/v1/jobs/latest", _answer("latest"), methods=["GET", "DELETE"]),
    Route("/api/v1/models/{model}", _answer("model"), methods=["GET"]),
    Route("/api/v1/models/{model}/versions/{version:int}", _answer("version"), methods=["GET"]),
    Route("/health", _answer("health"), methods=["GET"]),
]


async def _call(index: RouteIndex, method: str, path: str) -> tuple[int, dict[str, object]]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = scope_of(path, method)
    try:
        await index.dispatch(scope, no_body, send)
    except ApiError as error:
        return error.status, {"code": error.code}
    assert scope[ROUTE_KEY] is not None
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body) if body else {}


def test_a_static_path_is_one_lookup_of_its_candidates() -> None:
    index = RouteIndex(ROUTES)
    assert [r.endpoint.__name__ for r in index.candidates("/api/v1/models")] == ["list", "create"]
    assert [r.endpoint.__name__ for r in index.candidates("/api/v1/jobs/latest")] == [
        "job",
        "latest",
    ]
    assert [r.endpoint.__name__ for r in index.candidates("/api/v1/models/m")] == [
        "job",
        "model",
        "version",
    ]  # not static: only the parameterised routes are tried


@pytest.mark.parametrize(
    ("method", "path", "status", "answer"),
    [
        ("GET", "/api/v1/models", 200, {"route": "list", "params": {}}),
        ("POST", "/api/v1/models", 200, {"route": "create", "params": {}}),
        ("HEAD", "/health", 200, {"route": "health", "params": {}}),  # GET routes answer HEAD
        ("GET", "/api/v1/models/m1", 200, {"route": "model", "params": {"model": "m1"}}),
        (
            "GET",
            "/api/v1/models/m1/versions/3",
            200,
            {"route": "version", "params": {"model": "m1", "version": 3}},
        ),
        ("GET", "/api/v1/jobs/latest", 200, {"route": "job", "params": {"job": "latest"}}),
        ("DELETE", "/api/v1/jobs/latest", 200, {"route": "latest", "params": {}}),
        ("DELETE", "/api/v1/models", 405, {"code": "method_not_allowed"}),
        ("POST", "/api/v1/models/m1", 405, {"code": "method_not_allowed"}),
        ("GET", "/api/v1/models/m1/versions/x", 404, {"code": "route_not_found"}),
        ("GET", "/api/v1/nothing", 404, {"code": "route_not_found"}),
        ("GET", "/health/", 404, {"code": "route_not_found"}),
    ],
)
async def test_answers_as_ordered_matching_does(
    method: str, path: str, status: int, answer: dict[str, object]
) -> None:
    assert await _call(RouteIndex(ROUTES), method, path) == (status, answer)


async def test_a_final_newline_matches_as_the_route_pattern_does() -> None:
    # Starlette's patterns end in `$`, which matches before a final newline (%0A decoded):
    # the index answers what ordered matching answered
    status, answer = await _call(RouteIndex(ROUTES), "GET", "/health\n")
    assert (status, answer["route"]) == (200, "health")


async def test_the_index_agrees_with_starlette_ordered_matching_on_every_route() -> None:
    from starlette.routing import Match

    index = RouteIndex(ROUTES)
    paths = ["/api/v1/models", "/api/v1/jobs/latest", "/api/v1/jobs/7", "/api/v1/models/a"]
    for path in [*paths, "/health", "/nope", "/api/v1/models/a/versions/2"]:
        for method in ("GET", "POST", "DELETE", "HEAD"):
            scope = scope_of(path, method)
            ordered = next((r for r in ROUTES if r.matches(scope)[0] is Match.FULL), None)
            indexed = next(
                (r for r in index.candidates(path) if r.matches(scope)[0] is Match.FULL), None
            )
            assert indexed is ordered, (method, path)


def test_tenant_scoped_routes_outside_the_prefixes_are_scoped_by_the_edge() -> None:
    routes = [
        *ROUTES,
        TenantScopedRoute("/predict", _answer("seed_predict"), methods=["POST"]),
        TenantScopedRoute("/models/{release}", _answer("seed_model"), methods=["GET"]),
    ]
    scoped = ScopedPaths(routes)
    assert scoped("/predict") and scoped("/models/v1")
    assert not scoped("/health") and not scoped("/predict/x") and not scoped("/models/")

    def edge(path: str) -> EdgeRequest:
        return EdgeRequest(scope_of(path, "GET", {}), no_body, lambda p: False, scoped)

    assert edge("/predict").api and edge("/models/v1").api and edge("/api/v1/models").api
    assert not edge("/health").api and not edge("/api/v1/health").api
