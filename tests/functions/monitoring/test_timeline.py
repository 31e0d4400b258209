"""The live chart's history over HTTP (GET /api/v1/models/{m}/timeline) and delayed labels
joined to their predictions in the explorer and the timeline, on memory:// and Valkey."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
from river import datasets

from tests.conftest import TENANT
from tests.edge import error_code

SPEC = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
SAMPLES = list(itertools.islice(datasets.TrumpApproval(), 40))


def recent(http: httpx.Client) -> list[dict[str, Any]]:
    answer = http.get("/api/v1/predictions/recent", params={"model": "m", "limit": 1000})
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"]


def test_a_label_shows_its_actual_and_error(app_url: str) -> None:
    with httpx.Client(base_url=app_url, headers=TENANT, timeout=30) as http:
        assert http.post("/api/v1/models", json=SPEC).status_code == 201
        for x, y in SAMPLES[:30]:
            assert http.post("/api/v1/models/m/predict_learn", json={"x": x, "y": y}).is_success
        predicted = {}  # prediction id → (prediction, the label it will get)
        for x, y in SAMPLES[30:33]:
            answer = http.post("/api/v1/models/m/predict", json={"x": x}).json()
            predicted[answer["prediction_id"]] = (answer["prediction"], y)
        batch = http.post(
            "/api/v1/models/m/predict/batch", json={"instances": [x for x, _ in SAMPLES[33:35]]}
        ).json()["results"]
        for result, (_, y) in zip(batch, SAMPLES[33:35], strict=True):
            predicted[result["prediction_id"]] = (result["prediction"], y)
        ids = list(predicted)
        unlabelled = ids[1]
        labelled = [i for i in ids if i != unlabelled]

        before = {r["prediction_id"]: r for r in recent(http) if r["route"] != "predict_learn"}
        assert set(before) == set(ids) and all(r.get("actual") is None for r in before.values())

        one = http.post(
            "/api/v1/models/m/labels", json={"prediction_id": ids[0], "y": predicted[ids[0]][1]}
        )
        assert one.status_code == 200, one.text
        many = [{"prediction_id": i, "y": predicted[i][1]} for i in labelled[1:]]
        assert http.post("/api/v1/models/m/labels", json={"labels": many}).status_code == 200

        rows = recent(http)
        assert len(rows) == 35  # label rows are joined, not listed
        by_id = {r["prediction_id"]: r for r in rows if r["route"] != "predict_learn"}
        for pid in labelled:
            prediction, y = predicted[pid]
            assert by_id[pid]["actual"] == y
            assert by_id[pid]["prediction_error"] == abs(prediction - y)
            assert by_id[pid]["labelled_at"] >= by_id[pid]["at"]
        assert by_id[unlabelled].get("actual") is None and "labelled_at" not in by_id[unlabelled]

        body = http.get("/api/v1/models/m/timeline").json()
        assert body["model"] == "m" and body["active_version"] == 1
        points = body["points"]
        assert len(points) == 35
        assert [p["at"] for p in points] == sorted(p["at"] for p in points)  # oldest first
        learned = points[:30]
        assert [p["actual"] for p in learned] == [y for _, y in SAMPLES[:30]]
        assert [p["seq"] for p in learned] == list(range(1, 31))
        later = {p["prediction_id"]: p for p in points[30:]}
        for pid, (prediction, y) in predicted.items():
            point = later[pid]
            assert point["prediction"] == prediction
            if pid == unlabelled:
                assert point["actual"] is None and point["error"] is None
            else:
                assert (point["actual"], point["error"]) == (y, abs(prediction - y))
        known = [p["error"] for p in points if p["error"] is not None]
        window = known[-body["rolling_window"] :]
        assert points[-1]["rolling_error"] == pytest.approx(sum(window) / len(window))
        assert body["drift_episodes"] == []
        assert len(http.get("/api/v1/models/m/timeline?limit=5").json()["points"]) == 5


async def test_timeline_bounds_and_tenants(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    for x, y in SAMPLES[:12]:
        await client.post("/api/v1/models/m/predict_learn", json={"x": x, "y": y})
    body = (await client.get("/api/v1/models/m/timeline")).json()
    assert len(body["points"]) == 12
    most = 1000  # TIMELINE_MAX_POINTS
    for bad in ("0", str(most + 1), "x", "-1", "9" * 50):
        answer = await client.get(f"/api/v1/models/m/timeline?limit={bad}")
        assert error_code(answer, 400) == "invalid_limit"
    assert error_code(await client.get("/api/v1/models/nope/timeline"), 404) == "model_not_found"
    other = await client.get("/api/v1/models/m/timeline", headers={"X-Tenant-ID": "other"})
    assert error_code(other, 404) == "model_not_found"


@pytest.fixture
def four_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMELINE_MAX_POINTS", "4")


async def test_timeline_max_points_bounds_the_default(
    four_points: None, client: httpx.AsyncClient
) -> None:
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    for x, y in SAMPLES[:6]:
        await client.post("/api/v1/models/m/predict_learn", json={"x": x, "y": y})
    body = (await client.get("/api/v1/models/m/timeline")).json()
    assert [p["seq"] for p in body["points"]] == [3, 4, 5, 6]  # the newest, oldest first
    assert error_code(await client.get("/api/v1/models/m/timeline?limit=5"), 400) == "invalid_limit"
