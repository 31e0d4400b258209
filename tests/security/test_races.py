"""Races on the model lifecycle: delete is final, races answer 409, never 5xx.

Two app instances over one real Valkey run bench/races.py's trials (create‖delete,
activate‖delete, delete‖learn, a learn on a stale warm copy of a deleted-and-recreated model),
each a bounded number of times: every answer is 2xx, 404 or 409, and afterwards the state is
one a serial order explains (gone on every instance after a DELETE 204, the registry's
versions and active alias in step, the name creatable again). The table-driven cases below
check the single-request classes: absurd version numbers, a busy model, registry leftovers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.races import Races
from shared.runtime import current_runtime
from tests.edge import edge_client
from tests.security.conftest import assert_envelope, model_state, tenant_state
from tests.servers import AppProcess

TRIALS = 20  # per race: bounded, about 15 s for the four on two cores
SPEC = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
X = {"a": 1.0, "b": 2.0}


@pytest.mark.slow
@pytest.mark.parametrize("race", ["create_delete", "activate_delete", "delete_learn", "stale_warm"])
def test_two_instances_race_without_5xx_or_zombies(
    race: str, redis_url: str, app_factory: Callable[..., AppProcess], tmp_path: Path
) -> None:
    registry = tmp_path / "registry"
    env = {"STATE_URL": redis_url, "MODEL_REGISTRY_URI": f"file://{registry}"}
    a, b = app_factory(env), app_factory(env)
    races = Races(a.url, b.url, registry)
    try:
        for trial in range(TRIALS):
            getattr(races, race)(trial)
            races.tally.trials += 1
            with httpx.Client() as health:  # the service still answers between trials
                assert health.get(f"{a.url}/health").status_code == 200
    finally:
        races.close()
    summary = races.tally.summary()
    assert summary["trials"] == TRIALS
    assert summary["responses_5xx"] == 0, summary
    assert summary["unexpected_status"] == 0, summary
    assert summary["inconsistent"] == 0, summary


# ----- table-driven: one request each, status + envelope + state unchanged ------------------


@pytest.fixture
async def client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway in process, with model m (versions 1 and 2, 3 samples learned)."""
    async with edge_client(monkeypatch, tmp_path) as c:
        assert (await c.post("/api/v1/models", json=SPEC)).status_code == 201
        for y in (1.0, 2.0, 3.0):
            assert (
                await c.post("/api/v1/models/m/learn", json={"x": X, "y": y})
            ).status_code == 200
        assert (await c.post("/api/v1/models/m/versions", json={})).status_code == 201
        yield c


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: dict[str, Any] | None
    status: int
    code: str


HUGE = "9" * 400
CASES = [
    Case(
        "activate 0",
        "POST",
        "/api/v1/models/m/versions/0/activate",
        None,
        422,
        "version_out_of_range",
    ),
    Case(
        "activate -1",
        "POST",
        "/api/v1/models/m/versions/-1/activate",
        None,
        422,
        "version_out_of_range",
    ),
    Case(
        "activate 10^18",
        "POST",
        f"/api/v1/models/m/versions/1{'0' * 18}/activate",
        None,
        422,
        "version_out_of_range",
    ),
    Case(
        "activate 400 digits",
        "POST",
        f"/api/v1/models/m/versions/{HUGE}/activate",
        None,
        422,
        "version_out_of_range",
    ),
    Case(
        "activate 1.5",
        "POST",
        "/api/v1/models/m/versions/1.5/activate",
        None,
        400,
        "invalid_version",
    ),
    Case(
        "activate abc",
        "POST",
        "/api/v1/models/m/versions/abc/activate",
        None,
        400,
        "invalid_version",
    ),
    Case(
        "activate missing",
        "POST",
        "/api/v1/models/m/versions/99/activate",
        None,
        404,
        "version_not_found",
    ),
    Case(
        "predict 400 digits",
        "POST",
        f"/api/v1/models/m/predict?version={HUGE}",
        {"x": X},
        422,
        "version_out_of_range",
    ),
    Case(
        "alias 10^18",
        "PUT",
        "/api/v1/models/m/aliases/champion",
        {"version": 10**18},
        422,
        "validation_error",
    ),
    Case(
        "alias -5",
        "PUT",
        "/api/v1/models/m/aliases/champion",
        {"version": -5},
        422,
        "validation_error",
    ),
    Case(
        "alias missing",
        "PUT",
        "/api/v1/models/m/aliases/champion",
        {"version": 77},
        404,
        "version_not_found",
    ),
    Case("create taken", "POST", "/api/v1/models", SPEC, 409, "model_exists"),
]


async def registry_state(client: httpx.AsyncClient) -> dict[str, Any]:
    versions = await client.get("/api/v1/models/m/versions")
    return {"models": await tenant_state(client), "versions": versions.json()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_bad_lifecycle_requests_are_4xx_and_change_nothing(
    client: httpx.AsyncClient, case: Case
) -> None:
    before = await registry_state(client)
    response = await client.request(case.method, case.path, json=case.body)
    assert_envelope(response, case.status, case.code)
    assert await registry_state(client) == before


LOCKED = [
    Case("delete", "DELETE", "/api/v1/models/m", None, 409, "model_busy"),
    Case("activate", "POST", "/api/v1/models/m/versions/1/activate", None, 409, "model_busy"),
    Case("version", "POST", "/api/v1/models/m/versions", {}, 409, "model_busy"),
    Case("alias", "PUT", "/api/v1/models/m/aliases/champion", {"version": 1}, 409, "model_busy"),
]


@pytest.mark.parametrize("case", LOCKED, ids=[c.name for c in LOCKED])
async def test_a_busy_model_answers_409_model_busy_and_changes_nothing(
    client: httpx.AsyncClient, case: Case
) -> None:
    lifecycle = current_runtime().lifecycle
    lifecycle.locks.wait_seconds = 0.05  # LIFECYCLE_LOCK_WAIT_SECONDS, short for the test
    before = await registry_state(client)
    async with lifecycle.locks.hold("acme", "m"):  # another change of m is under way
        response = await client.request(case.method, case.path, json=case.body)
        assert (await client.get("/health")).status_code == 200
    assert_envelope(response, case.status, case.code)
    assert await registry_state(client) == before
    # the lock is released: the same request now goes through
    retried = await client.request(case.method, case.path, json=case.body)
    assert retried.status_code < 300, retried.text


async def test_registry_leftovers_never_block_a_create(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A split registry (aliases and a version folder, no model.json) left by an older crash:
    the create of that name answers 201, above every number the leftover holds."""
    leftover = tmp_path / "registry" / "acme" / "n"
    (leftover / "versions" / "3").mkdir(parents=True)
    (leftover / "aliases.json").write_text(json.dumps({"active": 2, "aliases": {}}))
    created = await client.post("/api/v1/models", json={**SPEC, "name": "n"})
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 4
    listing = (await client.get("/api/v1/models/n/versions")).json()
    assert [v["version"] for v in listing["versions"]] == [4] and listing["active"] == 4


async def test_delete_is_final_and_a_recreated_model_never_reuses_a_version(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.delete("/api/v1/models/m")).status_code == 204
    assert await model_state(client, "m") == {"absent": True}
    gone = await client.post("/api/v1/models/m/versions/1/activate")
    assert_envelope(gone, 404, "model_not_found")
    assert await model_state(client, "m") == {"absent": True}  # activation did not revive it
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    listing = (await client.get("/api/v1/models/m/versions")).json()
    assert [v["version"] for v in listing["versions"]] == [3] and listing["active"] == 3
    assert (await client.get("/api/v1/models/m")).json()["seq"] == 0
