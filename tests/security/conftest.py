"""Shared helpers of the abuse suite (issue: multi-tenant hardening).

Every case asserts three things: the status, the error envelope, and that nothing changed.
"""

from __future__ import annotations

from typing import Any

import httpx


def assert_envelope(response: httpx.Response, status: int, code: str | None = None) -> None:
    """`response` is the error envelope with this status (and code, if given)."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) >= {"error"}, body
    error = body["error"]
    assert {"code", "message", "request_id"} <= set(error), error
    if code is not None:
        assert error["code"] == code, error


async def model_state(client: httpx.AsyncClient, name: str, **headers: str) -> dict[str, Any]:
    """What "state unchanged" compares: the model's record and seq (or its absence)."""
    response = await client.get(f"/api/v1/models/{name}", headers=headers or None)
    if response.status_code == 404:
        return {"absent": True}
    assert response.status_code == 200, response.text
    return response.json()


async def tenant_state(client: httpx.AsyncClient, **headers: str) -> list[dict[str, Any]]:
    """Every model of the tenant with its seq, sorted by name."""
    response = await client.get("/api/v1/models", headers=headers or None)
    assert response.status_code == 200, response.text
    names = sorted(m["name"] for m in response.json()["models"])
    return [await model_state(client, n, **headers) for n in names]
