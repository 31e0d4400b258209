"""Who may read `/metrics`: its series name every tenant and model, so it is not public.

- METRICS_TOKEN set: `/metrics` needs `Authorization: Bearer <token>` (Prometheus'
  `authorization` scrape setting); anything else → 401 with the error envelope. The token is
  compared in constant time.
- METRICS_TOKEN unset: open with ENV=dev and test (`make run`, the suite); with ENV=prod
  `/metrics` answers 403 `metrics_token_required`: the service runs, its metrics stay shut
  until the operator configures a token (a start-up warning says so).
- METRICS_TENANT_LABELS=false: the exposition sums over the `tenant` and `model` labels, so
  even an authorised scraper learns no tenant or model names.
"""

from __future__ import annotations

import hmac
import logging

from starlette.requests import Request
from starlette.responses import Response

from shared.errors import ApiError
from shared.monitoring.prometheus import exposition
from shared.settings import Settings

log = logging.getLogger("ml.metrics")


def warn_if_closed(settings: Settings) -> None:
    """Called once at start-up: say why a prod scrape will be refused."""
    if settings.env == "prod" and settings.metrics_token is None:
        log.warning("METRICS_TOKEN is unset with ENV=prod: /metrics answers 403 until it is set")


def check_metrics_access(request: Request, settings: Settings) -> None:
    """Return if this request may read /metrics; raise the 401 / 403 otherwise."""
    token = settings.metrics_token
    if token is None:
        if settings.env == "prod":
            raise ApiError(
                403,
                "metrics_token_required",
                "/metrics is closed with ENV=prod until METRICS_TOKEN is set",
            )
        return
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    # compare_digest on bytes: constant time in the content (only the length can leak).
    if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), expected):
        raise ApiError(
            401,
            "metrics_unauthorized",
            "/metrics needs Authorization: Bearer <METRICS_TOKEN>",
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
        )


def metrics_response(request: Request, settings: Settings) -> Response:
    """The Prometheus exposition for an authorised scraper."""
    check_metrics_access(request, settings)
    body, content_type = exposition(settings.metrics_tenant_labels)
    return Response(body, media_type=content_type)
