"""POST /api/v1/models/{model}/labels: the contract of delayed labels over HTTP (ids, 404,
409, Idempotency-Key, batches with a bad item, bounds, TTL, tenants, freshness, batch ids)."""

from __future__ import annotations

import asyncio
import itertools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from river import datasets

from tests.conftest import TENANT
from tests.edge import edge_client, error_code

SPEC = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
SAMPLES = list(itertools.islice(datasets.TrumpApproval(), 20))
LABELS = "/api/v1/models/m/labels"


async def predict(client: httpx.AsyncClient, x: dict[str, Any], pid: str | None = None) -> str:
    body: dict[str, Any] = {"x": x} if pid is None else {"x": x, "id": pid}
    answer = await client.post("/api/v1/models/m/predict", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["prediction_id"])


async def seq(client: httpx.AsyncClient) -> int:
    return int((await client.get("/api/v1/models/m")).json()["seq"])


async def test_predict_answers_an_id_and_a_label_learns_it(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    (x0, y0), (x1, _) = SAMPLES[:2]
    made = await predict(client, x0)
    assert len(made) == 32  # made by the server
    assert await predict(client, x1, "order:42.a-b_c") == "order:42.a-b_c"

    one = await client.post(LABELS, json={"prediction_id": made, "y": y0})
    assert one.status_code == 200, one.text
    assert one.json() == {
        "learned": 1,
        "first_seq": 1,
        "last_seq": 1,
        "results": [{"prediction_id": made, "seq": 1}],
    }
    assert error_code(await client.post(LABELS, json={"prediction_id": made, "y": y0}), 409) == (
        "already_labelled"
    )
    unknown = await client.post(LABELS, json={"prediction_id": "nope", "y": 1.0})
    assert error_code(unknown, 404) == "prediction_not_found"
    # a labelled id is not reused by a later predict
    reused = await client.post("/api/v1/models/m/predict", json={"x": x0, "id": made})
    assert error_code(reused, 409) == "already_labelled"
    assert await seq(client) == 1


@pytest.mark.parametrize("bad", ["", "a b", "é", "x" * 129, "a/b", 7])
async def test_a_bad_id_is_refused_with_the_envelope(client: httpx.AsyncClient, bad: Any) -> None:
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    answer = await client.post("/api/v1/models/m/predict", json={"x": SAMPLES[0][0], "id": bad})
    assert error_code(answer, 422)
    assert (await client.get("/api/v1/models/m/freshness")).json()["pending_labels"] == 0


async def test_a_batch_of_labels_with_bad_items(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    ids = [await predict(client, x, f"p{i}") for i, (x, _) in enumerate(SAMPLES[:4])]
    body = {
        "labels": [
            {"prediction_id": ids[0], "y": SAMPLES[0][1]},
            {"prediction_id": "unknown", "y": 1.0},
            {"prediction_id": ids[1], "y": "not a number"},
            {"prediction_id": ids[2], "y": SAMPLES[2][1]},
            {"prediction_id": ids[2], "y": SAMPLES[2][1]},  # twice in one request
            {"prediction_id": "no spaces allowed", "y": 1.0},
        ]
    }
    answer = await client.post(LABELS, json=body)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert (got["learned"], got["first_seq"], got["last_seq"]) == (2, 1, 2)
    results = got["results"]
    assert results[0] == {"prediction_id": "p0", "seq": 1}
    assert results[3] == {"prediction_id": "p2", "seq": 2}
    assert [r.get("status") for r in results] == [None, 404, 422, None, 409, 404]
    assert results[1]["error"]["code"] == "prediction_not_found"
    assert results[2]["error"]["code"] == "invalid_target"
    assert results[4]["error"]["code"] == "already_labelled"
    # the bad item failed alone: its prediction is still kept
    retry = await client.post(LABELS, json={"prediction_id": "p1", "y": SAMPLES[1][1]})
    assert retry.json()["results"] == [{"prediction_id": "p1", "seq": 3}]
    fresh = (await client.get("/api/v1/models/m/freshness")).json()
    assert fresh["pending_labels"] == 1 and fresh["oldest_pending_label_age_seconds"] >= 0
    assert fresh["seq"] == 3


async def test_idempotency_key_retry_answers_the_first_answer(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    await predict(client, SAMPLES[0][0], "q")
    body = {"labels": [{"prediction_id": "q", "y": SAMPLES[0][1]}]}
    key = {"Idempotency-Key": "label-q"}
    first = await client.post(LABELS, json=body, headers=key)
    retry = await client.post(LABELS, json=body, headers=key)
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json() and await seq(client) == 1
    other = await client.post(LABELS, json={"prediction_id": "q", "y": 2.0}, headers=key)
    assert error_code(other, 409) == "idempotency_conflict"
    without = await client.post(LABELS, json=body)
    assert without.json()["results"][0]["status"] == 409


async def test_concurrent_labels_of_one_id_one_wins(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    await predict(client, SAMPLES[0][0], "race")
    body = {"prediction_id": "race", "y": SAMPLES[0][1]}
    answers = await asyncio.gather(*(client.post(LABELS, json=body) for _ in range(2)))
    assert sorted(a.status_code for a in answers) == [200, 409]
    assert await seq(client) == 1


def test_concurrent_labels_from_two_instances_on_valkey(app_factory: Any, redis_url: str) -> None:
    """Two processes on one Valkey: of two labels of one id, one 200 and one 409, each
    time; every id learned once."""
    env = {"STATE_URL": redis_url}
    first, second = app_factory(env).url, app_factory(env).url
    with httpx.Client(base_url=first, headers=TENANT) as http:
        assert http.post("/api/v1/models", json=SPEC).status_code == 201
        for i, (x, _) in enumerate(SAMPLES):
            assert http.post("/api/v1/models/m/predict", json={"x": x, "id": f"r{i}"}).is_success

    def label(url: str, i: int) -> int:
        with httpx.Client(base_url=url, headers=TENANT) as http:
            body = {"prediction_id": f"r{i}", "y": SAMPLES[i][1]}
            return http.post(LABELS, json=body).status_code

    with ThreadPoolExecutor(4) as pool:
        pairs = [(pool.submit(label, first, i), pool.submit(label, second, i)) for i in range(20)]
        statuses = [sorted((a.result(), b.result())) for a, b in pairs]
    assert statuses == [[200, 409]] * 20
    with httpx.Client(base_url=second, headers=TENANT) as http:
        assert http.get("/api/v1/models/m").json()["seq"] == 20
        assert http.get("/api/v1/models/m/freshness").json()["pending_labels"] == 0


async def test_another_tenant_cannot_label(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    await predict(client, SAMPLES[0][0], "mine")
    other = {"X-Tenant-ID": "globex"}
    assert (await client.post("/api/v1/models", json=SPEC, headers=other)).status_code == 201
    stolen = await client.post(LABELS, json={"prediction_id": "mine", "y": 1.0}, headers=other)
    assert error_code(stolen, 404) == "prediction_not_found"
    assert (await client.get("/api/v1/models/m", headers=other)).json()["seq"] == 0
    own = await client.post(LABELS, json={"prediction_id": "mine", "y": SAMPLES[0][1]})
    assert own.status_code == 200


async def test_labels_of_a_deleted_model_go_with_it(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    await predict(client, SAMPLES[0][0], "old")
    assert (await client.delete("/api/v1/models/m")).status_code == 204
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    answer = await client.post(LABELS, json={"prediction_id": "old", "y": 1.0})
    assert error_code(answer, 404) == "prediction_not_found"


async def test_batch_predict_items_carry_ids_to_label(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    instances = [SAMPLES[0][0], "not an object", SAMPLES[1][0]]
    batch = await client.post("/api/v1/models/m/predict/batch", json={"instances": instances})
    results = batch.json()["results"]
    assert "prediction_id" not in results[1]  # an error keeps nothing
    body = {
        "labels": [
            {"prediction_id": results[0]["prediction_id"], "y": SAMPLES[0][1]},
            {"prediction_id": results[2]["prediction_id"], "y": SAMPLES[1][1]},
        ]
    }
    assert (await client.post(LABELS, json=body)).json()["learned"] == 2


async def test_bounds_answer_4xx_and_change_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {"LABEL_MAX_PER_REQUEST": "2", "LABEL_MAX_KEPT_PER_MODEL": "3"}
    async with edge_client(monkeypatch, tmp_path, env) as client:
        assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
        for i in range(4):
            await predict(client, SAMPLES[i][0], f"b{i}")
        labels = [{"prediction_id": f"b{i}", "y": SAMPLES[i][1]} for i in range(1, 4)]
        over = await client.post(LABELS, json={"labels": labels})
        assert error_code(over, 422) == "too_many_labels"
        assert "LABEL_MAX_PER_REQUEST" in over.json()["error"]["message"]
        assert await seq(client) == 0
        # LABEL_MAX_KEPT_PER_MODEL=3: the oldest of four went
        fresh = (await client.get("/api/v1/models/m/freshness")).json()
        assert fresh["pending_labels"] == 3
        oldest = await client.post(LABELS, json={"prediction_id": "b0", "y": 1.0})
        assert error_code(oldest, 404) == "prediction_not_found"
        assert (await client.post(LABELS, json={"labels": labels[:2]})).json()["learned"] == 2
        for bad in ({}, {"labels": []}, {"prediction_id": "b3", "y": 1.0, "labels": labels}):
            assert error_code(await client.post(LABELS, json=bad), 422)
        assert await seq(client) == 2


async def test_an_expired_prediction_cannot_be_labelled(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with edge_client(monkeypatch, tmp_path, {"LABEL_TTL_SECONDS": "1"}) as client:
        assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
        await predict(client, SAMPLES[0][0], "soon")
        await predict(client, SAMPLES[1][0], "fresh")
        labelled = await client.post(LABELS, json={"prediction_id": "fresh", "y": 1.0})
        assert labelled.status_code == 200
        await asyncio.sleep(1.2)  # past LABEL_TTL_SECONDS
        answer = await client.post(LABELS, json={"prediction_id": "soon", "y": 1.0})
        assert error_code(answer, 404) == "prediction_not_found"
        assert (await client.get("/api/v1/models/m/freshness")).json()["pending_labels"] == 0
        assert await seq(client) == 1
