"""What each function group mounts of the compat surfaces (and the data set routes), so a
group's main.py adds them with one line: `ROUTES = [..., *routes_for("<group>")]`."""

from __future__ import annotations

from starlette.routing import Route

from shared import datasets_api
from shared.compat import (
    engine_routes,
    ml_service,
    online_features,
    online_ingestion,
    online_models,
)

GROUPS: dict[str, list[Route]] = {
    "train": [
        *datasets_api.ROUTES,
        *online_models.TRAIN_ROUTES,
        *engine_routes.TRAIN_ROUTES,
        *ml_service.TRAIN_ROUTES,
    ],
    "predict": [
        *online_models.PREDICT_ROUTES,
        *engine_routes.PREDICT_ROUTES,
        *ml_service.PREDICT_ROUTES,
    ],
    "batch": [*engine_routes.BATCH_ROUTES, *ml_service.BATCH_ROUTES],
    "activate": [*engine_routes.ACTIVATE_ROUTES, *ml_service.ACTIVATE_ROUTES],
    "ingest": [*online_ingestion.ROUTES, *online_features.ROUTES],
    "monitoring": [*online_models.MONITORING_ROUTES, *engine_routes.MONITORING_ROUTES],
}


def routes_for(group: str) -> list[Route]:
    return list(GROUPS[group])
