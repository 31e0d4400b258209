"""The ML service seed's (003) NATS event: `{"event_type": "ml.model.trained", "model_id",
"tenant_id", ...}` on exactly `ml.events.<tenant>`, for models trained through its API.

The core's own `model.trained` CloudEvent (on `ml.events.<tenant>.model.trained`) is
unchanged; this mirror adds the seed's message beside it (shared/events/mirrors.py), so a
client written against the seed's README keeps receiving what it documents.
"""

from __future__ import annotations

from typing import Any

from shared.events.cloudevent import SUBJECT_PREFIX
from shared.events.mirrors import register_mirror

ORIGIN = "ml_service"  # the `origin` of the jobs this surface submits (shared/training/jobs.py)


def seed_trained_event(
    tenant: str, event_type: str, data: dict[str, Any]
) -> tuple[str, dict[str, Any]] | None:
    if event_type != "model.trained" or data.get("origin") != ORIGIN:
        return None
    message = {
        "event_type": "ml.model.trained",
        "model_id": data["name"],
        "tenant_id": tenant,
        "registry_version": data.get("version"),
        "job_id": data.get("job_id"),
        "metrics": data.get("metrics"),
        "timestamp": data.get("created_at"),
    }
    return f"{SUBJECT_PREFIX}.{tenant}", message


register_mirror(seed_trained_event)
