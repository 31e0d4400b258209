"""Admin authentication: X-API-Key against ADMIN_API_KEY, compared in constant time."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from shared.errors import ApiError
from shared.settings import Settings


def require_admin(request: Request, settings: Settings) -> None:
    """401 without a key, 403 with a wrong one; with no key configured only ENV=dev is open."""
    expected = settings.admin_api_key.get_secret_value() if settings.admin_api_key else None
    if expected is None:
        if settings.env == "dev":
            return
        raise ApiError(403, "admin_disabled", "admin routes are disabled: ADMIN_API_KEY is not set")
    sent = request.headers.get("x-api-key")
    if sent is None:
        raise ApiError(401, "missing_api_key", "send the admin key in the X-API-Key header")
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise ApiError(403, "invalid_api_key", "the X-API-Key is not valid")
