"""Issue 17: a detector in a QuantileFilter pipeline and KMeans, over HTTP on memory:// and
Valkey, answer exactly what River answers in-process on the same ordered stream."""

from __future__ import annotations

import httpx

from shared import hashseed
from tests.conftest import TENANT
from tests.river_reference import N_ANOMALY, N_KMEANS, phishing, reference

DETECTOR = {
    "name": "fraud",
    "task": "anomaly",
    "steps": [
        {"kind": "min_max_scaler"},
        {
            "kind": "quantile_filter",
            "params": {"q": 0.95, "anomaly_detector": {"kind": "half_space_trees"}},
        },
    ],
}
KMEANS = {"name": "segments", "kind": "kmeans", "params": {"n_clusters": 3, "seed": 42}}


def test_quantile_filtered_half_space_trees_equal_river(app_url: str) -> None:
    samples = phishing(N_ANOMALY)
    with httpx.Client(base_url=app_url, headers=TENANT) as http:
        created = http.post("/api/v1/models", json=DETECTOR)
        assert created.status_code == 201, created.text
        assert created.json()["task"] == "anomaly"
        answers = [
            http.post("/api/v1/models/fraud/predict_learn", json={"x": x}).json()
            for x, _ in samples
        ]
        probe = http.post("/api/v1/models/fraud/predict", json={"x": samples[0][0]}).json()

    expected = reference("anomaly", hashseed.HASH_SEED)
    assert [{"score": a["score"], "is_anomaly": a["is_anomaly"]} for a in answers] == expected
    assert [a["seq"] for a in answers] == list(range(1, N_ANOMALY + 1))
    assert "prediction" not in answers[0]
    assert sum(a["is_anomaly"] for a in answers) > 0  # the filter flags some
    assert set(probe) >= {"score", "is_anomaly", "model_version", "seq", "prediction_id"}


def test_kmeans_clusters_equal_river(app_url: str) -> None:
    samples = phishing(N_KMEANS)
    with httpx.Client(base_url=app_url, headers=TENANT) as http:
        assert http.post("/api/v1/models", json=KMEANS).status_code == 201
        half = N_KMEANS // 2
        # the first half prequentially, the second through learn + predict (same order)
        answers = [
            http.post("/api/v1/models/segments/predict_learn", json={"x": x}).json()["cluster"]
            for x, _ in samples[:half]
        ]
        for x, _ in samples[half:]:
            answers.append(
                http.post("/api/v1/models/segments/predict", json={"x": x}).json()["cluster"]
            )
            learned = http.post("/api/v1/models/segments/learn", json={"x": x})
            assert learned.status_code == 200, learned.text

    assert answers == reference("kmeans", hashseed.HASH_SEED)
