"""A state store that comes back empty is detected, recovered from and reported.

Two app instances over one real Valkey; the store is emptied with FLUSHALL (what a restart
without persistence leaves). The next request on either instance finds the model missing
under another epoch: the model comes back from its newest registry version, its seq goes on
from the registry's high-water mark (never back at 0), and the loss is reported — an ERROR log
line, one `state.lost` event, `state_lost` in the model's status. A deleted model stays
deleted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.security.conftest import assert_envelope
from tests.servers import AppProcess

pytestmark = pytest.mark.slow
TENANT = {"X-Tenant-ID": "acme"}
SPEC = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}
PROBE = {"a": 0.5, "b": -1.0}
M = "/api/v1/models/m"


def sample(i: int) -> dict[str, Any]:
    return {"x": {"a": float(i % 7), "b": float(i % 3)}, "y": float(i)}


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


def recorded_seq(registry: Path, at_least: int) -> int:
    """The seq the registry last recorded for m (state.json), once compaction reached it."""
    state = registry / "acme" / "m" / "state.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if state.is_file() and json.loads(state.read_text())["seq"] >= at_least:
            return int(json.loads(state.read_text())["seq"])
        time.sleep(0.05)
    raise AssertionError(f"the registry never recorded seq >= {at_least}: {state}")


def events_of(events_dir: Path, kind: str) -> list[dict[str, Any]]:
    path = events_dir / "acme.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [e for e in map(json.loads, lines) if e["type"] == kind]


def test_flushed_state_store_is_detected_recovered_and_reported(
    redis_url: str, app_factory: Callable[..., AppProcess], tmp_path: Path
) -> None:
    registry, events = tmp_path / "registry", tmp_path / "events"
    env = {
        "STATE_URL": redis_url,
        "MODEL_REGISTRY_URI": f"file://{registry}",
        "EVENTS_DIR": str(events),
        "SNAPSHOT_EVERY": "10",  # compactions tell the registry how far the store got
    }
    apps = [app_factory(env), app_factory(env)]
    a, b = (httpx.Client(base_url=app.url, headers=TENANT, timeout=30) for app in apps)
    with a, b:
        ok(a.post("/api/v1/models", json=SPEC), 201)
        for i in range(5):
            ok(a.post(f"{M}/learn", json=sample(i)))
        assert ok(a.post(f"{M}/versions", json={}), 201)["version"] == 2  # at seq 5
        pinned = ok(a.post(f"{M}/predict?version=2", json={"x": PROBE}))["prediction"]
        for i in range(5, 30):
            ok(b.post(f"{M}/learn", json=sample(i)))
        recorded_seq(registry, at_least=20)  # 20 or 30, as compaction got
        # a model deleted before the loss stays deleted after it
        ok(a.post("/api/v1/models", json={**SPEC, "name": "gone"}), 201)
        ok(a.delete("/api/v1/models/gone"), 204)
        ok(a.get(M))  # a holds m warm

        flush = redis.Redis.from_url(redis_url)
        flush.flushall()
        flush.close()

        # the warm instance's next request finds it gone: recovered from the newest version
        # (2, the live state's snapshot; the active version stays 1), not 404
        recovered = ok(a.post(f"{M}/predict", json={"x": PROBE}))
        # the mark the recovery resumed from: read after it, since a compaction still running
        # when the store was emptied may have recorded 30 after the wait above saw 20
        known = recorded_seq(registry, at_least=20)
        assert recovered["prediction"] == pinned
        assert recovered["model_version"] == 1 and recovered["seq"] == known
        learned = ok(a.post(f"{M}/learn", json=sample(99)))
        assert learned["first_seq"] == known + 1  # seq goes on, never back at 0

        status = ok(b.get(M))
        assert status["seq"] == known + 1
        lost = status["state_lost"]
        assert lost["samples_lost"] == known - 5 and lost["detected_at"]
        assert [v["version"] for v in ok(b.get(f"{M}/versions"))["versions"]] == [1, 2]

        for client in (a, b):
            assert_envelope(client.get("/api/v1/models/gone"), 404, "model_not_found")
        names = [m["name"] for m in ok(b.get("/api/v1/models"))["models"]]
        assert names == ["m"]

    reported = events_of(events, "state.lost")
    assert len(reported) == 1, reported  # one detection, however many instances saw it
    assert reported[0]["data"] == {
        "name": "m",
        **lost,
        "recovered_version": 2,
        "seq": known,
    }
    logs = "".join(app.log.read_text() for app in apps if app.log)
    errors = [json.loads(line) for line in logs.splitlines() if '"ERROR"' in line]
    assert any("state store lost model acme/m" in e["message"] for e in errors), errors


def test_a_delete_after_the_loss_is_final(
    redis_url: str, app_factory: Callable[..., AppProcess], tmp_path: Path
) -> None:
    env = {"STATE_URL": redis_url, "MODEL_REGISTRY_URI": f"file://{tmp_path / 'registry'}"}
    apps = [app_factory(env), app_factory(env)]
    a, b = (httpx.Client(base_url=app.url, headers=TENANT, timeout=30) for app in apps)
    with a, b:
        ok(a.post("/api/v1/models", json=SPEC), 201)
        ok(b.post(f"{M}/learn", json=sample(1)))  # warm on b
        flush = redis.Redis.from_url(redis_url)
        flush.flushall()
        flush.close()
        ok(a.delete(M), 204)  # the store had lost it; the registry still knew it
        for client in (a, b):
            assert_envelope(client.post(f"{M}/learn", json=sample(2)), 404, "model_not_found")
            assert_envelope(client.get(M), 404, "model_not_found")
        assert ok(a.get("/api/v1/models"))["models"] == []
