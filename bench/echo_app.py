"""The echo function as functions-framework serves it, for `uvicorn bench.echo_app:app`.

Kept apart from bench.function_apps so the echo process imports nothing of River.
"""

from __future__ import annotations

from pathlib import Path

from functions_framework.aio import create_asgi_app
from starlette.types import ASGIApp

app: ASGIApp = create_asgi_app(target="app", source=str(Path(__file__).with_name("echo.py")))
