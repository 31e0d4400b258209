"""bench/floor.py as functions-framework serves it, for `uvicorn bench.floor_app:app` (its own
module: the other bench servers never load it)."""

from __future__ import annotations

from pathlib import Path

from functions_framework.aio import create_asgi_app
from starlette.types import ASGIApp

app: ASGIApp = create_asgi_app(target="app", source=str(Path(__file__).with_name("floor.py")))
