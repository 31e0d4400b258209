"""Admin authentication: X-API-Key against ADMIN_API_KEY, compared in constant time.

The edge (shared/edge/steps.py AdminKey) applies `check_admin_key` before routing to every request under an
admin prefix of its routes (`/api/v1/admin/`, and any `.../admin/` a group mounts, such as the
seed-compatible `/admin/...`), so an admin route added to any group is protected without
opting in; `require_admin` stays for handlers that want to state it explicitly.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.requests import Request

from shared.errors import ApiError
from shared.settings import Settings

ADMIN_PREFIX = "/api/v1/admin/"
API_KEY_HEADER = "x-api-key"


def check_admin_key(sent: str | None, settings: Settings) -> None:
    """401 without a key, 403 with a wrong one; with no key configured only ENV=dev is open."""
    expected = settings.admin_api_key.get_secret_value() if settings.admin_api_key else None
    if expected is None:
        if settings.env == "dev":
            return
        raise ApiError(403, "admin_disabled", "admin routes are disabled: ADMIN_API_KEY is not set")
    if sent is None:
        raise ApiError(401, "missing_api_key", "send the admin key in the X-API-Key header")
    # compare_digest on bytes: constant time in the content (only the length can leak).
    if not hmac.compare_digest(sent.encode("latin-1"), expected.encode()):
        raise ApiError(403, "invalid_api_key", "the X-API-Key is not valid")


def require_admin(request: Request, settings: Settings) -> None:
    """The same check from a handler (the edge has already run it for admin paths)."""
    check_admin_key(request.headers.get(API_KEY_HEADER), settings)


def admin_prefixes(paths: Iterable[str]) -> tuple[str, ...]:
    """Every prefix ending in an `/admin/` segment among these route paths, plus the API's
    own: a request path starting with one of them is an admin request."""
    found = {ADMIN_PREFIX}
    for path in paths:
        at = path.find("/admin/")
        if at >= 0 and "{" not in path[:at]:  # a literal segment, not a value like a model name
            found.add(path[: at + len("/admin/")])
    return tuple(sorted(found))
