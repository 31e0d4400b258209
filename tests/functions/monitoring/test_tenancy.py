"""A tenant never sees another tenant's metrics, drift, audit rows or dashboard data."""

from __future__ import annotations

import httpx
import pytest

A, B = {"X-Tenant-ID": "tenant-a"}, {"X-Tenant-ID": "tenant-b"}
KEY = "tenancy-admin-key-123456"
SPEC = {"name": "m", "steps": [{"kind": "linear_regression"}]}


@pytest.fixture
def admin_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_API_KEY", KEY)


async def test_monitoring_is_scoped_by_tenant(admin_key: None, client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/models", json=SPEC, headers=A)).status_code == 201
    for i in range(12):
        body = {"x": {"a": float(i)}, "y": 3.0 * i}
        assert (
            await client.post("/api/v1/models/m/predict_learn", json=body, headers=A)
        ).is_success

    for route in ("metrics", "drift", "freshness", "latency"):
        assert (await client.get(f"/api/v1/models/m/{route}", headers=B)).status_code == 404
    recent = await client.get("/api/v1/predictions/recent?model=m", headers=B)
    assert recent.json() == {"predictions": []}
    assert (await client.get("/api/v1/monitoring/overview", headers=B)).json()["models"] == []

    # b's own model of the same name has only b's samples, metrics and rows
    assert (await client.post("/api/v1/models", json=SPEC, headers=B)).status_code == 201
    body = {"x": {"a": 1.0}, "y": -50.0}
    assert (await client.post("/api/v1/models/m/predict_learn", json=body, headers=B)).is_success
    mine = (await client.get("/api/v1/models/m/metrics", headers=B)).json()["versions"]
    assert [v["samples"] for v in mine] == [1] and mine[0]["cumulative"]["mae"] == 50.0
    theirs = (await client.get("/api/v1/models/m/metrics", headers=A)).json()["versions"]
    assert [v["samples"] for v in theirs] == [12]
    rows_b = (await client.get("/api/v1/predictions/recent", headers=B)).json()["predictions"]
    assert [r["tenant"] for r in rows_b] == ["tenant-b"]
    [overview_b] = (await client.get("/api/v1/monitoring/overview", headers=B)).json()["models"]
    assert (overview_b["predictions"], overview_b["learned"]) == (1, 1)

    cleared = await client.delete("/api/v1/admin/audit", headers={**B, "X-API-Key": KEY})
    assert cleared.json() == {"deleted": 1}
    rows_a = (await client.get("/api/v1/predictions/recent", headers=A)).json()["predictions"]
    assert len(rows_a) == 12 and {r["tenant"] for r in rows_a} == {"tenant-a"}
