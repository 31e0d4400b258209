"""The functions-framework entry point: it hands us a Request; our app answers the raw ASGI
call instead (each `functions/<group>/main.py` target calls `forward`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send


class _Forward(Response):
    """A response that hands the whole ASGI call on to a router."""

    def __init__(self, router: ASGIApp) -> None:
        self.router = router
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router(scope, receive, send)


def forward(router: ASGIApp, request: Request) -> Response:
    """functions-framework gives us a Request; let our router answer the raw ASGI call."""
    return _Forward(router)
