"""The baseline: a functions-framework function that only parses and re-serialises JSON.

Entry point: `functions-framework --asgi --target app --source bench/echo.py`.
"""

from __future__ import annotations

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


@functions_framework.aio.http
async def app(request: Request) -> Response:
    return JSONResponse(await request.json())
