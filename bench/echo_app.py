"""The echo function as functions-framework serves it, for `uvicorn bench.echo_app:app`,
and `bare`: the same echo as a plain ASGI callable, for the floor under functions-framework.

Kept apart from bench.function_apps so the echo processes import nothing of River.
"""

from __future__ import annotations

import json
from pathlib import Path

from functions_framework.aio import create_asgi_app
from starlette.types import ASGIApp, Receive, Scope, Send

app: ASGIApp = create_asgi_app(target="app", source=str(Path(__file__).with_name("echo.py")))


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    """What the functions-framework echo does (parse the JSON body, answer it re-encoded, as
    Starlette's JSONResponse encodes), with no framework between uvicorn and the function."""
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = json.dumps(
        json.loads(b"".join(chunks)), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
