"""Prediction audit: every prediction is a row with its request id; bounded; admin-cleared."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

KEY = "audit-admin-key-123456"
MAX_ROWS = 7
SPEC = {"name": "lin", "steps": [{"kind": "linear_regression"}]}


@pytest.fixture
def audit_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_MAX_ROWS", str(MAX_ROWS))
    monkeypatch.setenv("ADMIN_API_KEY", KEY)


def digest(x: object) -> str:
    return hashlib.sha256(json.dumps(x, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


async def recent(client: httpx.AsyncClient, query: str = "") -> list[dict[str, object]]:
    response = await client.get(f"/api/v1/predictions/recent?limit=1000{query}")
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


async def test_rows_carry_request_ids_and_outputs(
    audit_env: None, client: httpx.AsyncClient
) -> None:
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    sent: list[tuple[str, str, object, object]] = []  # (request id, route, x, prediction)
    for i in range(2):
        x = {"a": float(i)}
        r = await client.post("/api/v1/models/lin/predict_learn", json={"x": x, "y": 2.0 * i})
        sent.append((r.headers["x-request-id"], "predict_learn", x, r.json()["prediction"]))
    x = {"a": 5.0}
    r = await client.post(
        "/api/v1/models/lin/predict", json={"x": x}, headers={"X-Request-ID": "client-chosen-1"}
    )
    assert r.headers["x-request-id"] == "client-chosen-1"
    sent.append(("client-chosen-1", "predict", x, r.json()["prediction"]))
    batch = [{"a": 1.0}, {"a": "text"}, {"a": 2.0}]
    r = await client.post("/api/v1/models/lin/predict/batch", json={"instances": batch})
    results = r.json()["results"]
    for x, result in zip(batch, results, strict=True):
        sent.append((r.headers["x-request-id"], "predict_batch", x, result.get("prediction")))

    rows = await recent(client)
    assert len(rows) == 6  # newest first; the batch's three items are the newest
    by_hash = {(row["request_id"], row["input_hash"]): row for row in rows}
    for request_id, route, x, prediction in sent:
        row = by_hash[request_id, digest(x)]
        assert (row["route"], row["model"], row["tenant"], row["version"]) == (
            route,
            "lin",
            "acme",
            1,
        )
        assert row["output"].get("prediction") == prediction
        assert row["latency_ms"] >= 0
    bad = by_hash[sent[-2][0], digest({"a": "text"})]
    assert bad["output"]["error"]["code"] == "invalid_features"


async def test_retention_filter_and_limits(audit_env: None, client: httpx.AsyncClient) -> None:
    for name in ("lin", "other"):
        assert (await client.post("/api/v1/models", json={**SPEC, "name": name})).status_code == 201
    for i in range(6):
        for name in ("lin", "other"):
            await client.post(f"/api/v1/models/{name}/predict", json={"x": {"a": float(i)}})
    rows = await recent(client)
    assert len(rows) == MAX_ROWS  # AUDIT_MAX_ROWS per tenant: the oldest went
    assert [r["input_hash"] for r in rows[:2]] == [digest({"a": 5.0})] * 2
    only = await recent(client, "&model=other")
    assert {r["model"] for r in only} == {"other"} and len(only) == 4  # of the newest 7
    assert len((await client.get("/api/v1/predictions/recent?limit=2")).json()["predictions"]) == 2
    for bad in ("limit=0", "limit=1001", "limit=x", "model=..", "model=a%20b"):
        assert (await client.get(f"/api/v1/predictions/recent?{bad}")).status_code == 400


async def test_clearing_needs_the_admin_key(audit_env: None, client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
    for i in range(3):
        await client.post("/api/v1/models/lin/predict", json={"x": {"a": float(i)}})
    assert (await client.delete("/api/v1/admin/audit")).status_code == 401
    wrong = await client.delete("/api/v1/admin/audit", headers={"X-API-Key": "nope"})
    assert wrong.status_code == 403
    assert len(await recent(client)) == 3
    right = await client.delete("/api/v1/admin/audit", headers={"X-API-Key": KEY})
    assert right.status_code == 200 and right.json() == {"deleted": 3}
    assert await recent(client) == []
