"""`/metrics` lists every tenant and model: with METRICS_TOKEN it needs `Authorization: Bearer
<token>` (401 otherwise), with ENV=prod and no token it is closed (403), and
METRICS_TENANT_LABELS=false sums the tenant and model labels away. `make run` (ENV=dev, no
token) keeps it open."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.edge import edge_client
from tests.security.conftest import assert_envelope

TOKEN = "scrape-0123456789abcdef"
SPEC = {"name": "m", "steps": [{"kind": "linear_regression"}]}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer"}, 401),
        ({"Authorization": "Bearer "}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": f"Bearer {TOKEN}x"}, 401),
        ({"Authorization": f"Bearer {TOKEN[:-1]}"}, 401),
        ({"Authorization": f"Basic {TOKEN}"}, 401),
        ({"Authorization": TOKEN}, 401),
        ({"X-API-Key": TOKEN}, 401),
        ({"Authorization": f"Bearer {TOKEN}"}, 200),
        ({"Authorization": f"bearer {TOKEN}"}, 200),
    ],
)
async def test_a_token_guards_metrics(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, headers: dict[str, str], status: int
) -> None:
    async with edge_client(monkeypatch, tmp_path, {"METRICS_TOKEN": TOKEN}) as client:
        response = await client.get("/metrics", headers=headers)
        if status == 200:
            assert response.status_code == 200
            assert "ml_http_requests_total" in response.text
        else:
            assert_envelope(response, 401, "metrics_unauthorized")
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert TOKEN not in response.text
        assert (await client.get("/health")).status_code == 200  # the rest stays open


@pytest.mark.parametrize(
    ("env", "status"),
    [
        ({"ENV": "dev"}, 200),  # make run
        ({"ENV": "test"}, 200),
        ({"ENV": "dev", "METRICS_TOKEN": "  "}, 200),  # blank is unset, not an empty token
        ({"ENV": "prod", "TENANT_AUTH": "none"}, 403),
        ({"ENV": "prod", "TENANT_AUTH": "none", "METRICS_TOKEN": ""}, 403),
    ],
)
async def test_without_a_token_only_prod_is_closed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], status: int
) -> None:
    async with edge_client(monkeypatch, tmp_path, env) as client:
        response = await client.get("/metrics")
        if status == 403:
            assert_envelope(response, 403, "metrics_token_required")
            assert "METRICS_TOKEN" in response.json()["error"]["message"]
        else:
            assert response.status_code == 200
        assert (await client.get("/health")).status_code == 200


async def test_prod_with_a_token_serves_the_scraper(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {"ENV": "prod", "TENANT_AUTH": "none", "METRICS_TOKEN": TOKEN}
    async with edge_client(monkeypatch, tmp_path, env) as client:
        assert_envelope(await client.get("/metrics"), 401, "metrics_unauthorized")
        ok = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200


def labelled(text: str) -> set[str]:
    return {
        key
        for family in text_string_to_metric_families(text)
        for s in family.samples
        for key in s.labels
    }


def predictions(text: str, route: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "ml_predictions_total" and s.labels.get("route") == route
    )


@pytest.mark.parametrize("tenant_labels", ["true", "false"])
async def test_tenant_labels_can_be_dropped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tenant_labels: str
) -> None:
    env = {"METRICS_TENANT_LABELS": tenant_labels}
    async with edge_client(monkeypatch, tmp_path, env) as client:
        assert (await client.post("/api/v1/models", json=SPEC)).status_code == 201
        before = predictions((await client.get("/metrics")).text, "predict_learn")
        for _ in range(3):
            body = {"x": {"a": 1.0}, "y": 2.0}
            assert (
                await client.post("/api/v1/models/m/predict_learn", json=body)
            ).status_code == 200
        text = (await client.get("/metrics")).text
        # the totals survive either way (summed over tenants and models when dropped)
        assert predictions(text, "predict_learn") - before == 3
        if tenant_labels == "false":
            assert not labelled(text) & {"tenant", "model"}
            assert 'tenant="acme"' not in text
        else:
            assert 'ml_predictions_total{model="m",route="predict_learn",tenant="acme"}' in text
