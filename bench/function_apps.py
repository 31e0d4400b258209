"""Our predict and train functions as functions-framework serves them, for uvicorn.

`predict` and `train` are the deployed units (split deployment, shared redis:// state).
`combined` puts both in one process for memory:// state, where a model only exists in the
process that created it: it picks the function by path, one string test per request.
"""

from __future__ import annotations

from pathlib import Path

from functions_framework.aio import create_asgi_app
from starlette.types import ASGIApp, Receive, Scope, Send

FUNCTIONS = Path(__file__).resolve().parent.parent / "functions"
PREDICT_SUFFIXES = ("/predict", "/predict_learn", "/forecast")

predict: ASGIApp = create_asgi_app(target="app", source=str(FUNCTIONS / "predict" / "main.py"))
train: ASGIApp = create_asgi_app(target="app", source=str(FUNCTIONS / "train" / "main.py"))


async def combined(scope: Scope, receive: Receive, send: Send) -> None:
    path: str = scope.get("path", "")
    target = predict if path.endswith(PREDICT_SUFFIXES) else train
    await target(scope, receive, send)
