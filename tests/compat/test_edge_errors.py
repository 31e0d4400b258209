"""The compat error shapes use the core's one exception mapping: the same status, code and
Retry-After as the native edge (shared/edge/errors.py api_error_of), wrapped in the seed's shape."""

from __future__ import annotations

import json

import pytest

from compat.ml_service.handlers import PREFIX
from shared.edge.errors import api_error_of, as_api_error, error_response
from shared.registry.base import RegistryUnavailable
from shared.state.base import StateUnavailable


@pytest.mark.parametrize(
    "exc",
    [StateUnavailable("down"), RegistryUnavailable("down")],
    ids=["state store down", "registry down"],
)
async def test_ml_service_errors_match_the_core_mapping(exc: Exception) -> None:
    scope = {"method": "GET", "path": f"{PREFIX}models"}
    response = error_response(as_api_error(exc, scope), f"{PREFIX}models")
    core = api_error_of(exc)
    assert core is not None
    body = json.loads(bytes(response.body))
    assert response.status_code == core.status == 503
    assert body["success"] is False
    assert body["error"]["code"] == core.code
    assert response.headers["Retry-After"] == core.headers["Retry-After"]


def test_an_unexpected_exception_has_no_mapping() -> None:
    assert api_error_of(RuntimeError("boom")) is None
