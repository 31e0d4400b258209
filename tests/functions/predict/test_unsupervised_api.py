"""Issue 17 over HTTP: what detectors and clusterers take and answer on every data-plane verb,
their monitoring, the Open Inference Protocol, and the seed APIs (4xx, never 500)."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from river import datasets

DETECTOR = {
    "name": "fraud",
    "steps": [
        {"kind": "min_max_scaler"},
        {
            "kind": "quantile_filter",
            "params": {"q": 0.9, "anomaly_detector": {"kind": "half_space_trees"}},
        },
    ],
}
ALWAYS_FLAGS = {  # a threshold every LODA score reaches: each answer is flagged
    "name": "alarm",
    "kind": "threshold_filter",
    "params": {"threshold": -1.0, "anomaly_detector": {"kind": "loda"}},
}
KMEANS = {"name": "segments", "kind": "kmeans", "params": {"n_clusters": 3}}
SAMPLES = list(itertools.islice(datasets.Phishing(), 60))


async def _create(client: httpx.AsyncClient, spec: dict[str, Any]) -> dict[str, Any]:
    created = await client.post("/api/v1/models", json=spec)
    assert created.status_code == 201, created.text
    return created.json()


async def _code(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def test_catalog_lists_detectors_and_clusterers(client: httpx.AsyncClient) -> None:
    kinds = {k["kind"]: k for k in (await client.get("/api/v1/catalog")).json()["kinds"]}
    assert kinds["half_space_trees"]["task"] == "anomaly"
    assert kinds["half_space_trees"]["role"] == "anomaly_detector"
    assert kinds["dbstream"]["task"] == "clustering"
    assert kinds["threshold_filter"]["required"] == ["anomaly_detector", "threshold"]
    assert kinds["kmeans"]["bounds"]["n_clusters"] == "1..1000"


async def test_a_detector_learns_x_alone_and_answers_scores(client: httpx.AsyncClient) -> None:
    record = await _create(client, DETECTOR)
    assert record["task"] == "anomaly"
    base = "/api/v1/models/fraud"
    for x, _ in SAMPLES[:40]:
        answer = (await client.post(f"{base}/predict_learn", json={"x": x})).json()
        assert set(answer) == {"score", "is_anomaly", "model_version", "seq"}
    # a ground-truth flag may ride along: never learned, scored by the monitoring (ROC AUC)
    for x, y in SAMPLES[40:50]:
        answered = await client.post(f"{base}/predict_learn", json={"x": x, "y": y})
        assert answered.status_code == 200, answered.text
    learned = await client.post(f"{base}/learn", json={"samples": [{"x": x} for x, _ in SAMPLES]})
    assert learned.status_code == 200 and learned.json()["learned"] == len(SAMPLES)
    predicted = (await client.post(f"{base}/predict", json={"x": SAMPLES[0][0], "id": "p1"})).json()
    assert {"score", "is_anomaly", "prediction_id"} <= set(predicted)
    assert isinstance(predicted["score"], int | float)
    assert isinstance(predicted["is_anomaly"], bool)
    labelled = await client.post(f"{base}/labels", json={"prediction_id": "p1", "y": True})
    assert labelled.status_code == 200 and labelled.json()["learned"] == 1
    batch = (await client.post(f"{base}/predict/batch", json={"instances": [SAMPLES[1][0]]})).json()
    assert set(batch["results"][0]) >= {"score", "is_anomaly", "prediction_id"}

    metrics = (await client.get(f"{base}/metrics")).json()
    assert metrics["task"] == "anomaly"
    [version] = metrics["versions"]
    assert version["kind"] == "anomaly" and version["scored"] == 51
    cumulative = version["cumulative"]
    assert set(cumulative) == {
        "score_p50",
        "score_p90",
        "score_p99",
        "score_mean",
        "flagged_rate",
        "roc_auc",
    }
    assert 0 <= cumulative["flagged_rate"] <= 1 and cumulative["roc_auc"] is not None
    drift = await client.get(f"{base}/drift")
    assert drift.status_code == 200 and drift.json()["error"]["detector"] == "ADWIN"
    freshness = (await client.get(f"{base}/freshness")).json()
    assert freshness["seq"] == 40 + 10 + len(SAMPLES) + 1
    recent = (await client.get("/api/v1/predictions/recent", params={"model": "fraud"})).json()
    assert "score" in recent["predictions"][0]["output"]


async def test_wrong_detector_payloads_are_422(client: httpx.AsyncClient) -> None:
    await _create(client, DETECTOR)
    base = "/api/v1/models/fraud"
    x = SAMPLES[0][0]
    for path, body, code in [
        ("predict_learn", {"x": x, "y": 3.5}, "invalid_target"),
        ("predict_learn", {"x": x, "y": "fraud"}, "invalid_target"),
        ("learn", {"y": True}, "missing_features"),
        ("predict", {"x": {"name": "text"}}, "invalid_features"),
        ("predict", {"x": [1, 2]}, "invalid_features"),
    ]:
        assert await _code(await client.post(f"{base}/{path}", json=body)) == (422, code)
    assert (await client.get(base)).json()["seq"] == 0  # nothing learned


async def test_a_univariate_detector_scores_y(client: httpx.AsyncClient) -> None:
    await _create(
        client, {"name": "temp", "kind": "gaussian_scorer", "params": {"grace_period": 2}}
    )
    for y in (20.0, 21.0, 19.5, 20.5):
        answer = await client.post("/api/v1/models/temp/predict_learn", json={"y": y})
        assert answer.status_code == 200, answer.text
        assert "score" in answer.json() and "is_anomaly" not in answer.json()
    assert await _code(await client.post("/api/v1/models/temp/learn", json={"x": {}})) == (
        422,
        "missing_target",
    )
    # predict carries no y: what would it score?
    refused = await client.post("/api/v1/models/temp/predict", json={"x": {}})
    assert await _code(refused) == (422, "prediction_failed")
    assert "predict_learn" in refused.json()["error"]["message"]


async def test_flagged_answers_are_counted_for_prometheus(client: httpx.AsyncClient) -> None:
    await _create(client, ALWAYS_FLAGS)
    for x, _ in SAMPLES[:3]:
        answer = (await client.post("/api/v1/models/alarm/predict", json={"x": x})).json()
        assert answer["is_anomaly"] is True
    text = (await client.get("/metrics")).text
    assert 'ml_anomalies_flagged_total{model="alarm",tenant="acme"} 3.0' in text


async def test_a_clusterer_learns_x_alone_and_answers_cluster_ids(
    client: httpx.AsyncClient,
) -> None:
    record = await _create(client, KMEANS)
    assert record["task"] == "clustering"
    base = "/api/v1/models/segments"
    clusters = []
    for x, _ in SAMPLES[:30]:
        answer = (await client.post(f"{base}/predict_learn", json={"x": x})).json()
        assert set(answer) == {"cluster", "model_version", "seq"}
        clusters.append(answer["cluster"])
    assert set(clusters) <= {0, 1, 2}
    assert (await client.post(f"{base}/learn", json={"x": SAMPLES[31][0]})).status_code == 200
    # a clusterer has no target: a y is refused rather than silently dropped
    with_y = await client.post(f"{base}/predict_learn", json={"x": SAMPLES[0][0], "y": 1})
    assert await _code(with_y) == (422, "unexpected_target")
    metrics = (await client.get(f"{base}/metrics")).json()
    [version] = metrics["versions"]
    assert version["kind"] == "clustering"
    expected = {str(c): clusters.count(c) for c in sorted(set(clusters))}
    assert version["cluster_sizes"] == expected
    assert version["cumulative"]["clusters"] == len(expected)


async def test_open_inference_protocol_answers_scores_and_clusters(
    client: httpx.AsyncClient,
) -> None:
    await _create(client, DETECTOR)
    await _create(client, KMEANS)
    rows = [x for x, _ in SAMPLES[:4]]
    names = list(rows[0])
    inputs = [
        {"name": n, "datatype": "FP64", "shape": [4], "data": [float(r[n]) for r in rows]}
        for n in names
    ]
    for x in rows:  # the models learn the features: metadata lists them
        await client.post("/api/v1/models/fraud/learn", json={"x": x})
        await client.post("/api/v1/models/segments/learn", json={"x": x})
    fraud = await client.post("/v2/models/fraud/infer", json={"inputs": inputs})
    assert fraud.status_code == 200, fraud.text
    outputs = {o["name"]: o for o in fraud.json()["outputs"]}
    assert outputs["score"]["datatype"] == "FP64" and len(outputs["score"]["data"]) == 4
    assert outputs["is_anomaly"]["datatype"] == "BOOL"
    only = await client.post(
        "/v2/models/fraud/infer", json={"inputs": inputs, "outputs": [{"name": "predict"}]}
    )
    assert only.status_code == 400
    segments = await client.post("/v2/models/segments/infer", json={"inputs": inputs})
    assert segments.status_code == 200, segments.text
    [cluster] = segments.json()["outputs"]
    assert cluster["name"] == "cluster" and cluster["datatype"] == "INT64"
    metadata = (await client.get("/v2/models/segments")).json()
    assert metadata["outputs"] == [{"name": "cluster", "datatype": "INT64", "shape": [-1]}]


async def test_seed_apis_refuse_them_with_4xx(client: httpx.AsyncClient) -> None:
    await _create(client, KMEANS)
    x = SAMPLES[0][0]
    online = await client.post("/api/v1/online/models/segments/predict", json={"features": x})
    assert await _code(online) == (422, "unsupported_task")
    learn = await client.post(
        "/api/v1/online/models/segments/predict_learn", json={"features": x, "target": 1.0}
    )
    assert learn.status_code == 422
    ml = await client.post("/api/v1/ml/models/segments/predict", json={"input_data": x})
    assert 400 <= ml.status_code < 500


async def test_dbstream_answers_clusters_and_refuses_a_micro_cluster_past_the_bound(
    client: httpx.AsyncClient,
) -> None:
    # a radius so small that each distinct sample opens a micro-cluster, never faded out
    spec = {
        "name": "dense",
        "kind": "dbstream",
        "params": {"clustering_threshold": 1e-6, "fading_factor": 1e-6, "cleanup_interval": 1e6},
    }
    await _create(client, spec)
    base = "/api/v1/models/dense"
    # MAX_MICRO_CLUSTERS (1000) distinct samples learn
    samples = [{"x": {"a": float(i)}} for i in range(1000)]
    learned = await client.post(f"{base}/learn", json={"samples": samples})
    assert learned.status_code == 200, learned.text
    refused = await client.post(f"{base}/learn", json={"x": {"a": -1.0}})
    assert await _code(refused) == (422, "learn_failed")
    assert "MAX_MICRO_CLUSTERS" in refused.json()["error"]["message"]
    assert (await client.get(base)).json()["seq"] == 1000
    again = await client.post(f"{base}/predict_learn", json={"x": {"a": 3.0}})  # joins one
    assert again.status_code == 200, again.text
    assert (await client.get(base)).json()["seq"] == 1001
    answer = (await client.post(f"{base}/predict", json={"x": {"a": 3.0}})).json()
    assert isinstance(answer["cluster"], int)  # River's id, not null
