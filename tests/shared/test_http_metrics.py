"""Every request is counted per route template, method and status in Prometheus."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def count(text: str, route: str, method: str, status: str) -> float:
    for family in text_string_to_metric_families(text):
        if family.name == "ml_http_requests":
            for sample in family.samples:
                labels = sample.labels
                if (
                    sample.name.endswith("_total")
                    and labels.get("route") == route
                    and labels.get("method") == method
                    and labels.get("status") == status
                ):
                    return sample.value
    return 0.0


async def test_requests_are_counted_by_route_template(client: httpx.AsyncClient) -> None:
    route = "/api/v1/models/{model}/predict"
    before = (await client.get("/metrics")).text
    for _ in range(3):
        await client.post("/api/v1/models/ghost/predict", json={"x": {"a": 1}})
    after = (await client.get("/metrics")).text
    assert count(after, route, "POST", "404") - count(before, route, "POST", "404") == 3
    assert "/api/v1/models/ghost/predict" not in after  # raw paths never become labels
