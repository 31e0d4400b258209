"""CORS (`CORS_ORIGINS`): which origins may call from a browser, and the headers that say so."""

from __future__ import annotations

from shared.edge.request import NOT_PREFLIGHT, PREFLIGHT, PREFLIGHT_REFUSED
from shared.settings import Settings

# Headers a browser may send cross-origin (preflight answer) and may read back.
CORS_ALLOW_HEADERS = (
    b"Content-Type, X-Tenant-ID, X-Tenant-Key, X-API-Key, Idempotency-Key, X-Request-ID, "
    b"traceparent, tracestate"
)
CORS_ALLOW_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
CORS_EXPOSE_HEADERS = b"X-Request-ID, Retry-After"
CORS_MAX_AGE = b"600"

_PREFLIGHT_HEADERS = [
    (b"access-control-allow-methods", CORS_ALLOW_METHODS),
    (b"access-control-allow-headers", CORS_ALLOW_HEADERS),
    (b"access-control-max-age", CORS_MAX_AGE),
]


class CorsPolicy:
    """The allowed origins, read once from the settings."""

    __slots__ = ("any", "enabled", "origins")

    def __init__(self, settings: Settings) -> None:
        origins = settings.cors_origin_list
        self.any = "*" in origins
        # Browsers send scheme and host in lower case.
        self.origins = frozenset(o.lower().encode() for o in origins if o != "*")
        self.enabled = self.any or bool(self.origins)

    def allowed_origin(self, origin: bytes) -> bytes | None:
        """The Access-Control-Allow-Origin value for `origin`, or None if it is not allowed."""
        if origin in self.origins:
            return origin
        return b"*" if self.any else None

    def headers_for(
        self,
        origin: bytes,
        method: str,
        headers: dict[bytes, bytes],
        extra: list[tuple[bytes, bytes]],
    ) -> int:
        """Add the CORS response headers for `origin` to `extra`; tell whether this is a
        preflight (NOT_PREFLIGHT, PREFLIGHT or PREFLIGHT_REFUSED)."""
        allowed = self.allowed_origin(origin)
        preflight = NOT_PREFLIGHT
        # An OPTIONS request with Origin and Access-Control-Request-Method is a preflight.
        if method == "OPTIONS" and b"access-control-request-method" in headers:
            preflight = PREFLIGHT_REFUSED if allowed is None else PREFLIGHT
        if allowed is not None:
            extra.append((b"access-control-allow-origin", allowed))
            if preflight == PREFLIGHT:
                extra += _PREFLIGHT_HEADERS
            else:
                extra.append((b"access-control-expose-headers", CORS_EXPOSE_HEADERS))
        return preflight
