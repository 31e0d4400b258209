"""Drift over HTTP: a mean shift is detected soon after it happens and announced once; a
stationary stream raises nothing."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import httpx

SPEC = {"name": "flow", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
SHIFT_AT = 600  # samples before the shift
DETECT_WITHIN = 60  # samples after the shift by which the drift must be seen


def stream(n: int, *, y_shift: float = 0.0, x_shift: float = 0.0, seed: int = 1) -> list[Any]:
    """y = 2a - b + 5 + noise; from SHIFT_AT on, y (or a) moves by the given amount."""
    rng = random.Random(seed)
    samples = []
    for i in range(n):
        after = i >= SHIFT_AT
        x = {"a": rng.gauss(x_shift if after else 0.0, 1), "b": rng.gauss(0, 1)}
        y = 2 * x["a"] - x["b"] + 5 + (y_shift if after else 0.0) + rng.gauss(0, 0.5)
        samples.append((x, y))
    return samples


async def feed(client: httpx.AsyncClient, samples: list[Any]) -> None:
    for x, y in samples:
        answer = await client.post("/api/v1/models/flow/predict_learn", json={"x": x, "y": y})
        assert answer.status_code == 200, answer.text


def drift_events(tmp_path: Path) -> list[dict[str, Any]]:
    log = tmp_path / "events" / "acme.jsonl"  # NATS_URL unset: the local event log
    events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [e for e in events if e["type"] == "drift.detected"]


async def test_mean_shift_is_detected_and_announced_once(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    samples = stream(1200, y_shift=10.0)
    await feed(client, samples[:SHIFT_AT])
    quiet = (await client.get("/api/v1/models/flow/drift")).json()
    assert not quiet["detected"] and quiet["episodes"] == []

    await feed(client, samples[SHIFT_AT : SHIFT_AT + DETECT_WITHIN])
    during = (await client.get("/api/v1/models/flow/drift")).json()
    assert during["detected"]
    [episode] = during["episodes"]
    assert SHIFT_AT < episode["started_seq"] <= SHIFT_AT + DETECT_WITHIN
    assert episode["signals"] == ["error"] and episode["open"]

    await feed(client, samples[SHIFT_AT + DETECT_WITHIN :])
    after = (await client.get("/api/v1/models/flow/drift")).json()
    assert len(after["episodes"]) == 1  # one shift, one episode (the model then re-learns)
    [event] = drift_events(tmp_path)
    assert event["subject"] == "flow"
    assert event["data"]["started_seq"] == episode["started_seq"]
    assert event["data"]["model"] == "flow" and event["data"]["version"] == 1


async def test_feature_shift_is_seen_by_psi_and_ks(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    await feed(client, stream(1000, x_shift=3.0, seed=2))
    drift = (await client.get("/api/v1/models/flow/drift")).json()
    features = drift["features"]["features"]
    assert features["a"]["drift"] and not features["b"]["drift"]
    assert features["a"]["psi"] > 1 and features["a"]["ks_pvalue"] < 1e-6
    assert any("features" in e["signals"] and e["features"] == ["a"] for e in drift["episodes"])


async def test_stationary_stream_raises_no_drift(client: httpx.AsyncClient, tmp_path: Path) -> None:
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    await feed(client, stream(1200, seed=3))
    drift = (await client.get("/api/v1/models/flow/drift")).json()
    assert not drift["detected"] and drift["episodes"] == []
    assert drift["samples"] == 1200
    assert all(not f["drift"] for f in drift["features"]["features"].values())
    assert drift_events(tmp_path) == []
