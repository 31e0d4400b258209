"""A series feeds anomaly detectors and clusterers (an IoT user streams sensor values and
wants anomaly flags): a univariate detector scores each value, a multivariate detector and a
clusterer get the window with the value in it; each scores before it learns, and the ingest
answer carries each one's score/is_anomaly or cluster, equal to River in-process on River's
WaterFlow series — by POST observations and by pushed CloudEvents alike, on memory:// and
Valkey."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from cloudevents.conversion import to_structured
from cloudevents.http import CloudEvent
from river import datasets

from shared import hashseed
from tests.conftest import TENANT
from tests.river_reference import N_WATER, WATER_LAGS, reference

SUBSCRIBERS = {
    "hst": {
        "steps": [
            {"kind": "min_max_scaler"},
            {
                "kind": "quantile_filter",
                "params": {"q": 0.95, "anomaly_detector": {"kind": "half_space_trees"}},
            },
        ]
    },
    "gauss": {
        "kind": "quantile_filter",
        "params": {"q": 0.95, "anomaly_detector": {"kind": "gaussian_scorer"}},
    },
    "km": {"kind": "kmeans", "params": {"n_clusters": 3, "seed": 42}},
}
PUSHED = 40  # the stream's last observations arrive as CloudEvents


def answers_of(entry: dict[str, Any]) -> dict[str, Any]:
    """Each subscriber's answer without its bookkeeping (None: it waited for the window)."""
    shown = {}
    for model in SUBSCRIBERS:
        answer = entry["predictions"].get(model)
        shown[model] = (
            None
            if answer is None
            else {k: v for k, v in answer.items() if k in ("score", "is_anomaly", "cluster")}
        )
    return shown


def test_detectors_and_clusterers_subscribed_to_a_series_equal_river(app_url: str) -> None:
    values = [value for _, value in itertools.islice(datasets.WaterFlow(), N_WATER)]
    entries: list[dict[str, Any]] = []
    with httpx.Client(base_url=app_url, headers=TENANT, timeout=60) as http:
        for name, spec in SUBSCRIBERS.items():
            assert http.post("/api/v1/models", json={"name": name, **spec}).status_code == 201
        body = {"models": list(SUBSCRIBERS), "n_lags": WATER_LAGS}
        subscribed = http.put("/api/v1/series/flow/models", json=body)
        assert subscribed.status_code == 200, subscribed.text
        observed = values[:-PUSHED]
        for start in range(0, len(observed), 40):
            chunk = [{"value": v} for v in observed[start : start + 40]]
            sent = http.post("/api/v1/series/flow/observations", json=chunk)
            assert sent.status_code == 200, sent.text
            entries += sent.json()["observations"]
        for index, value in enumerate(values[-PUSHED:]):
            event = CloudEvent(
                {"type": "io.onlineml.observation", "source": "sensor/7", "id": f"e{index}"},
                {"series": "flow", "value": value},
            )
            headers, content = to_structured(event)
            pushed = http.post("/api/v1/events", content=content, headers=headers)
            assert pushed.status_code == 200, pushed.text
            entries += pushed.json()["observations"]
        seqs = {name: http.get(f"/api/v1/models/{name}").json()["seq"] for name in SUBSCRIBERS}
        metrics = http.get("/api/v1/models/hst/metrics").json()

    expected = reference("water", hashseed.HASH_SEED)
    got = [answers_of(entry) for entry in entries]
    for model in SUBSCRIBERS:
        assert [g[model] for g in got] == expected[model], model
    assert seqs == {"hst": N_WATER - WATER_LAGS, "gauss": N_WATER, "km": N_WATER - WATER_LAGS}
    assert any(g["hst"] and g["hst"]["is_anomaly"] for g in got)  # the sensor's flags
    assert "flagged_rate" in str(metrics)  # the monitoring of a subscriber as of any model
