"""G3: a retried write with the same Idempotency-Key is applied once."""

from __future__ import annotations

import httpx

SPEC = {"name": "m", "steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]}


def test_same_key_applied_once_on_both_backends(app_url: str) -> None:
    with httpx.Client(base_url=app_url, headers={"X-Tenant-ID": "acme"}) as http:
        assert http.post("/api/v1/models", json=SPEC).status_code == 201
        http.post("/api/v1/models/m/learn", json={"x": {"a": 1.0}, "y": 3.0})
        key = {"Idempotency-Key": "pl-1"}
        first = http.post(
            "/api/v1/models/m/predict_learn", json={"x": {"a": 2.0}, "y": 5.0}, headers=key
        )
        # the model moves on before the retry arrives
        http.post("/api/v1/models/m/learn", json={"x": {"a": 3.0}, "y": 1.0})
        retry = http.post(
            "/api/v1/models/m/predict_learn", json={"x": {"a": 2.0}, "y": 5.0}, headers=key
        )
        assert first.status_code == retry.status_code == 200
        assert retry.json() == first.json()  # the very first response, not a new prediction
        assert http.get("/api/v1/models/m").json()["seq"] == 3

        other = http.post(
            "/api/v1/models/m/predict_learn", json={"x": {"a": 2.0}, "y": 6.0}, headers=key
        )
        assert other.status_code == 409
        assert other.json()["error"]["code"] == "idempotency_conflict"

        batch = {"samples": [{"x": {"a": 1.0}, "y": 1.0}, {"x": {"a": 2.0}, "y": 2.0}]}
        learn_key = {"Idempotency-Key": "batch-7"}
        once = http.post("/api/v1/models/m/learn", json=batch, headers=learn_key).json()
        twice = http.post("/api/v1/models/m/learn", json=batch, headers=learn_key).json()
        assert once == twice == {"learned": 2, "first_seq": 4, "last_seq": 5}
        assert http.get("/api/v1/models/m").json()["seq"] == 5
        # the same key on another route is another request body: conflict, not a replay
        cross = http.post(
            "/api/v1/models/m/predict_learn", json={"x": {"a": 1.0}, "y": 1.0}, headers=learn_key
        )
        assert cross.status_code == 409
        assert http.get("/api/v1/models/m").json()["seq"] == 5
