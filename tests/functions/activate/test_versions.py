"""Versions, pinned predictions, aliases, activation and rollback over the API (in-process).

Every prediction is compared with River in-process, float for float (`==`).
"""

from __future__ import annotations

import hashlib
import pickle
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from river import compose, datasets, ensemble, linear_model, preprocessing
from river.tree import HoeffdingTreeRegressor

from shared.runtime import current_runtime
from shared.settings import reset_settings_cache

SPEC = {
    "name": "m",
    "task": "regression",
    "steps": [
        {"kind": "standard_scaler", "params": {}},
        {"kind": "linear_regression", "params": {"l2": 0.0}},
    ],
}
SAMPLES: list[tuple[dict[str, Any], float]] = list(datasets.TrumpApproval())
PROBE = SAMPLES[-1][0]  # never learned by these tests
M = "/api/v1/models/m"


def river(samples: list[tuple[dict[str, Any], float]]) -> compose.Pipeline:
    """The same pipeline in-process, trained on `samples` in order."""
    model = preprocessing.StandardScaler() | linear_model.LinearRegression(l2=0.0)
    for x, y in samples:
        model.learn_one(x, y)
    return model


async def learn(client: httpx.AsyncClient, samples: list[tuple[dict[str, Any], float]]) -> None:
    body = {"samples": [{"x": x, "y": y} for x, y in samples]}
    assert (await client.post(f"{M}/learn", json=body)).status_code == 200


async def predict(client: httpx.AsyncClient, query: str = "", x: Any = PROBE) -> httpx.Response:
    return await client.post(f"{M}/predict{query}", json={"x": x})


async def prediction(client: httpx.AsyncClient, query: str = "") -> float:
    response = await predict(client, query)
    assert response.status_code == 200, response.text
    return response.json()["prediction"]


async def make_versions(client: httpx.AsyncClient) -> None:
    """Model m: version 1 fresh, 300 samples learned, version 2 snapshotted from them."""
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    await learn(client, SAMPLES[:300])
    created = await client.post(f"{M}/versions", json={"description": "after 300"})
    assert created.status_code == 201, created.text


@pytest.fixture
async def versioned(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await make_versions(client)
    return client


def error_code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "request_id"}
    return error["code"]


async def test_snapshot_is_version_2_with_lineage_meta(
    versioned: httpx.AsyncClient, tmp_path: Path
) -> None:
    listing = (await versioned.get(f"{M}/versions")).json()
    assert listing["active"] == 1 and listing["aliases"] == {}
    first, second = listing["versions"]
    assert (first["version"], first["seq"], first["parent"]) == (1, 0, None)
    assert (second["version"], second["seq"], second["parent"]) == (2, 300, 1)
    assert second["description"] == "after 300"
    for meta in (first, second):
        assert meta["task"] == "regression" and meta["spec"] == {"steps": SPEC["steps"]}
        datetime.fromisoformat(meta["created_at"])
    # the stored artifact is the model at seq 300, and the meta's sha256 is its digest
    artifact = (tmp_path / "registry/acme/m/versions/2/model.pkl").read_bytes()
    assert second["sha256"] == hashlib.sha256(artifact).hexdigest()
    assert pickle.loads(artifact).predict_one(PROBE) == river(SAMPLES[:300]).predict_one(PROBE)


async def test_pinned_versions_predict_as_frozen_while_live_keeps_learning(
    versioned: httpx.AsyncClient,
) -> None:
    await learn(versioned, SAMPLES[300:400])
    v1, v2 = (await predict(versioned, "?version=1")).json(), await predict(versioned, "?version=2")
    assert v1["prediction"] == river([]).predict_one(PROBE) and v1["model_version"] == 1
    assert v2.json()["prediction"] == river(SAMPLES[:300]).predict_one(PROBE)
    assert v2.json()["model_version"] == 2
    live = (await predict(versioned)).json()
    assert live["prediction"] == river(SAMPLES[:400]).predict_one(PROBE)
    assert (live["model_version"], live["seq"]) == (1, 400)
    assert len({v1["prediction"], v2.json()["prediction"], live["prediction"]}) == 3


async def test_alias_champion_serves_its_version_and_moves(versioned: httpx.AsyncClient) -> None:
    put = await versioned.put(f"{M}/aliases/champion", json={"version": 2})
    assert put.status_code == 200 and put.json() == {"name": "m", "aliases": {"champion": 2}}
    assert await prediction(versioned, "?alias=champion") == await prediction(
        versioned, "?version=2"
    )
    assert (await versioned.get(f"{M}/versions")).json()["aliases"] == {"champion": 2}

    await versioned.put(f"{M}/aliases/champion", json={"version": 1})
    assert await prediction(versioned, "?alias=champion") == river([]).predict_one(PROBE)
    deleted = await versioned.delete(f"{M}/aliases/champion")
    assert deleted.json() == {"name": "m", "aliases": {}}
    assert error_code(await predict(versioned, "?alias=champion"), 404) == "alias_not_found"


async def test_unknown_alias_version_or_model_is_a_404_envelope(
    versioned: httpx.AsyncClient,
) -> None:
    assert error_code(await predict(versioned, "?alias=nope"), 404) == "alias_not_found"
    assert error_code(await predict(versioned, "?version=9"), 404) == "version_not_found"
    assert error_code(await versioned.post(f"{M}/versions/9/activate"), 404) == "version_not_found"
    put = await versioned.put(f"{M}/aliases/champion", json={"version": 9})
    assert error_code(put, 404) == "version_not_found"
    assert error_code(await versioned.delete(f"{M}/aliases/nope"), 404) == "alias_not_found"
    for response in (
        await versioned.get("/api/v1/models/ghost/versions"),
        await versioned.post("/api/v1/models/ghost/versions"),
        await versioned.post("/api/v1/models/ghost/predict?version=1", json={"x": PROBE}),
    ):
        assert error_code(response, 404) == "model_not_found"


async def test_x_the_model_cannot_predict_is_422_live_or_pinned(
    versioned: httpx.AsyncClient,
) -> None:
    x = {**PROBE, "gallup": None}  # passes the input check; StandardScaler raises on it
    for query in ("", "?version=2", "?alias=live"):
        assert error_code(await predict(versioned, query, x), 422) == "prediction_failed"


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        ("0", 422, "version_out_of_range"),
        ("-1", 422, "version_out_of_range"),
        ("1" + "0" * 18, 422, "version_out_of_range"),  # 10^18: over 18 digits
        ("1" * 5000, 422, "version_out_of_range"),
        ("x", 400, "invalid_version"),
        ("1.0", 400, "invalid_version"),
        ("%C2%B2", 400, "invalid_version"),
    ],
    ids=["0", "-1", "1e18", "huge", "x", "1.0", "sup2"],
)
async def test_version_must_be_a_positive_integer(
    versioned: httpx.AsyncClient, raw: str, status: int, code: str
) -> None:
    # '²' passes str.isdigit() but not int(); 5000 digits exceed int()'s limit: both were 500s
    assert error_code(await predict(versioned, f"?version={raw}"), status) == code
    activate = await versioned.post(f"{M}/versions/{raw}/activate")
    assert error_code(activate, status) == code


@pytest.mark.parametrize("alias", ["active", "live"])
async def test_reserved_alias_names_are_422_and_change_nothing(
    versioned: httpx.AsyncClient, alias: str
) -> None:
    put = await versioned.put(f"{M}/aliases/{alias}", json={"version": 2})
    assert error_code(put, 422) == "reserved_alias"
    listing = (await versioned.get(f"{M}/versions")).json()
    assert listing["active"] == 1 and listing["aliases"] == {}
    # reading them is fine, frozen: `active` the version activated (1, the fresh model),
    # `live` the newest snapshot of the online model since then (2)
    assert await prediction(versioned, "?alias=active") == river([]).predict_one(PROBE)
    assert await prediction(versioned, "?alias=live") == river(SAMPLES[:300]).predict_one(PROBE)


@pytest.mark.parametrize("alias", ["a..b", "-lead", ".hidden", "has%20space", "x" * 129])
async def test_bad_alias_names_are_400(versioned: httpx.AsyncClient, alias: str) -> None:
    put = await versioned.put(f"{M}/aliases/{alias}", json={"version": 2})
    assert error_code(put, 400) == "invalid_alias_name"
    assert error_code(await versioned.delete(f"{M}/aliases/{alias}"), 400) == "invalid_alias_name"


async def test_tenants_versions_and_aliases_are_isolated(versioned: httpx.AsyncClient) -> None:
    other = {"X-Tenant-ID": "beta"}
    assert error_code(await versioned.get(f"{M}/versions", headers=other), 404) == "model_not_found"
    put = await versioned.put(f"{M}/aliases/champion", json={"version": 2}, headers=other)
    assert error_code(put, 404) == "model_not_found"
    pinned = await versioned.post(f"{M}/predict?version=2", json={"x": PROBE}, headers=other)
    assert error_code(pinned, 404) == "model_not_found"

    # beta's own model of the same name has its own versions, built from its own data
    assert (await versioned.post("/api/v1/models", json=SPEC, headers=other)).status_code == 201
    body = {"samples": [{"x": x, "y": y} for x, y in SAMPLES[500:550]]}
    await versioned.post(f"{M}/learn", json=body, headers=other)
    assert (await versioned.post(f"{M}/versions", headers=other)).json()["seq"] == 50
    await versioned.put(f"{M}/aliases/champion", json={"version": 2}, headers=other)
    beta = await versioned.post(f"{M}/predict?alias=champion", json={"x": PROBE}, headers=other)
    assert beta.json()["prediction"] == river(SAMPLES[500:550]).predict_one(PROBE)
    assert await prediction(versioned, "?version=2") == river(SAMPLES[:300]).predict_one(PROBE)
    assert (await versioned.get(f"{M}/versions")).json()["aliases"] == {}


async def test_activation_restarts_live_model_from_version_and_learning_continues(
    versioned: httpx.AsyncClient,
) -> None:
    await learn(versioned, SAMPLES[300:400])
    activated = await versioned.post(f"{M}/versions/2/activate")
    assert activated.json() == {"name": "m", "version": 2, "previous": 1, "seq": 400}
    live = (await predict(versioned)).json()
    assert live["prediction"] == river(SAMPLES[:300]).predict_one(PROBE)
    assert (live["model_version"], live["seq"]) == (2, 400)
    assert (await versioned.get(M)).json()["version"] == 2
    assert (await versioned.get(f"{M}/versions")).json()["active"] == 2

    # prequential learning resumes from the version-2 state, sample for sample
    local = river(SAMPLES[:300])
    for seq, (x, y) in enumerate(SAMPLES[400:450], start=401):
        answer = (await versioned.post(f"{M}/predict_learn", json={"x": x, "y": y})).json()
        assert answer == {"prediction": local.predict_one(x), "model_version": 2, "seq": seq}
        local.learn_one(x, y)
    assert await prediction(versioned) == local.predict_one(PROBE)


async def test_rollback_to_version_1_serves_the_fresh_model(versioned: httpx.AsyncClient) -> None:
    await versioned.post(f"{M}/versions/2/activate")
    rolled = await versioned.post(f"{M}/versions/1/activate")
    assert rolled.json() == {"name": "m", "version": 1, "previous": 2, "seq": 300}
    live = (await predict(versioned)).json()
    assert live.pop("prediction_id")  # kept for a later label
    assert live == {"prediction": river([]).predict_one(PROBE), "model_version": 1, "seq": 300}
    assert (await versioned.get(f"{M}/versions")).json()["active"] == 1

    local = river([])
    for x, y in SAMPLES[:20]:
        answer = (await versioned.post(f"{M}/predict_learn", json={"x": x, "y": y})).json()
        assert answer["prediction"] == local.predict_one(x)
        local.learn_one(x, y)
    # the versions themselves never changed
    assert await prediction(versioned, "?version=2") == river(SAMPLES[:300]).predict_one(PROBE)


async def test_snapshot_of_an_activated_model_records_its_parent(
    versioned: httpx.AsyncClient,
) -> None:
    await versioned.post(f"{M}/versions/2/activate")
    await learn(versioned, SAMPLES[300:310])
    third = (await versioned.post(f"{M}/versions")).json()
    assert (third["version"], third["parent"], third["seq"]) == (3, 2, 310)
    expected = river(SAMPLES[:310]).predict_one(PROBE)
    assert await prediction(versioned, "?version=3") == expected == await prediction(versioned)


async def test_admin_reload_needs_the_key_and_changes_no_prediction(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_API_KEY", "s3cret")
    reset_settings_cache()  # read by the runtime the first request builds
    await make_versions(client)
    before = [await prediction(client), await prediction(client, "?version=2")]
    reload = "/api/v1/admin/reload"
    assert error_code(await client.post(reload), 401) == "missing_api_key"
    assert (
        error_code(await client.post(reload, headers={"X-API-Key": "x"}), 403) == "invalid_api_key"
    )
    dropped = await client.post(reload, headers={"X-API-Key": "s3cret"})
    assert dropped.json() == {"dropped": 2}  # the warm model and the frozen version 2
    assert [await prediction(client), await prediction(client, "?version=2")] == before


async def test_a_request_during_delete_does_not_bring_the_model_back(
    versioned: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = current_runtime()
    during: list[int] = []

    def then_request(step: Any) -> Any:
        async def wrapped(tenant: str, name: str, **kwargs: Any) -> Any:
            done = await step(tenant, name, **kwargs)
            during.append((await predict(versioned)).status_code)  # arrives mid-delete
            return done

        return wrapped

    # a request after either half of the delete (state, registry) must not `recover` the model
    monkeypatch.setattr(runtime.models, "delete", then_request(runtime.models.delete))
    registry = runtime.registry
    monkeypatch.setattr(registry, "delete_model", then_request(registry.delete_model))
    assert (await versioned.delete(M)).status_code == 204
    assert len(during) == 2
    assert error_code(await versioned.get(M), 404) == "model_not_found"
    assert (await versioned.get("/api/v1/models")).json() == {"models": []}


async def test_a_tree_whose_leaves_saw_ordered_values_becomes_a_version(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Bagged Hoeffding trees after 900 date-ordered samples: pickle's own walk of a leaf's
    E-BST chain overflowed (the version was a 500); written flat, it is the model as learned."""
    tree = {"kind": "hoeffding_tree_regressor", "params": {}}
    steps = [{"kind": "bagging_regressor", "params": {"n_models": 2, "seed": 1, "model": tree}}]
    assert (
        await client.post("/api/v1/models", json={"name": "m", "steps": steps})
    ).status_code == 201
    for start in range(0, 900, 300):
        await learn(client, SAMPLES[start : start + 300])
    created = await client.post(f"{M}/versions")
    assert created.status_code == 201, created.text
    local = ensemble.BaggingRegressor(HoeffdingTreeRegressor(), n_models=2, seed=1)
    for x, y in SAMPLES[:900]:
        local.learn_one(x, y)
    artifact = (tmp_path / "registry/acme/m/versions/2/model.pkl").read_bytes()
    assert pickle.loads(artifact).predict_one(PROBE) == local.predict_one(PROBE)
    assert await prediction(client, "?version=2") == local.predict_one(PROBE)
