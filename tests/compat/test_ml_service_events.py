"""Seed 003's NATS event: a subscriber to exactly `ml.events.<tenant>` receives
`{"event_type": "ml.model.trained", "model_id", "tenant_id", ...}` for a model trained through
the ML service's API — and nothing for a model trained through the core's; the core's own
CloudEvent is published as before."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import nats
import pytest

from tests.compat.test_ml_service import SEED_TRAIN, TICKETS
from tests.nats_server import NatsServer
from tests.servers import AppProcess

ACME = {"X-Tenant-ID": "acme"}


async def test_a_model_trained_through_the_seed_api_announces_itself_as_the_seed_does(
    nats_server: NatsServer, app_factory: Callable[..., AppProcess]
) -> None:
    app = app_factory({"STATE_URL": "memory://", "NATS_URL": nats_server.url})
    nc = await nats.connect(nats_server.url, connect_timeout=2)
    seed_sub = await nc.subscribe("ml.events.acme")  # exactly the seed's subject
    core_sub = await nc.subscribe("ml.events.acme.model.trained")
    try:
        async with httpx.AsyncClient(base_url=app.url, headers=ACME, timeout=30) as client:
            uploaded = await client.post(
                "/api/v1/datasets",
                params={"dataset_id": "dataset_123"},
                content=TICKETS.read_bytes(),
                headers={"Content-Type": "text/csv"},
            )
            assert uploaded.status_code == 201, uploaded.text
            # a core training job first: the seed subject must stay silent for it
            spec = {"name": "core", "steps": [{"kind": "logistic_regression"}]}
            assert (await client.post("/api/v1/models", json=spec)).status_code == 201
            core = {"dataset": "Phishing", "activate": True}
            assert (await client.post("/api/v1/models/core/train", json=core)).status_code == 202
            core_event = json.loads((await core_sub.next_msg(timeout=30)).data)
            assert core_event["type"] == "model.trained" and core_event["subject"] == "core"

            assert (
                await client.post("/api/v1/ml/models/train", json=SEED_TRAIN)
            ).status_code == 202
            message = await seed_sub.next_msg(timeout=30)
            seed_event = json.loads(message.data)
            assert message.subject == "ml.events.acme"
            assert seed_event["event_type"] == "ml.model.trained"
            assert seed_event["model_id"] == "ticket_classifier"
            assert seed_event["tenant_id"] == "acme"
            assert isinstance(seed_event["registry_version"], int)
            # the core's CloudEvent for the same training is unchanged
            ours = json.loads((await core_sub.next_msg(timeout=30)).data)
            assert ours["subject"] == "ticket_classifier" and ours["specversion"] == "1.0"
            assert ours["data"]["version"] == seed_event["registry_version"]
            with pytest.raises(nats.errors.TimeoutError):  # one seed message, none for `core`
                await seed_sub.next_msg(timeout=0.5)
    finally:
        await nc.close()
