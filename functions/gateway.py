"""Local gateway for `make run`: every function group's routes on one port.

Not deployed: in production each group is its own Cloud Run / Knative service.
Run: `uvicorn functions.gateway:app --port 8080`.
"""

from __future__ import annotations

import importlib

from shared.app import build_router

GROUPS = ("train", "predict", "batch", "activate", "ingest", "monitoring")

routes = [
    route for group in GROUPS for route in importlib.import_module(f"functions.{group}.main").ROUTES
]
app = build_router("gateway", routes)
