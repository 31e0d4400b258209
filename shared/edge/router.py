"""Which route answers: routes indexed by path, so a static path is one dict lookup.

Starlette's own order is kept exactly: the first route (in the group's order) whose path and
method match answers; a path some route matches with another method is 405, any other 404.
A static path's candidates are its own routes plus every parameterised route whose pattern
also matches it, in the original order; any other path tries the parameterised routes only
(a static route matches nothing but its own path).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from shared.errors import ApiError

ROUTE_KEY = "ml.route"  # the matched route on the scope, for the access log and the span


class TenantScopedRoute(Route):
    """A route outside the tenant prefixes (architecture.md §3) that the edge scopes all the
    same: tenant required, its key, its rate limit — a seed API's bare path."""


class ScopedPaths:
    """Which paths outside the tenant prefixes the group's TenantScopedRoutes serve: a static
    path by one set lookup, the parameterised ones by their patterns."""

    __slots__ = ("patterns", "static")

    def __init__(self, routes: Sequence[Route]) -> None:
        scoped = [r for r in routes if isinstance(r, TenantScopedRoute)]
        self.static = frozenset(r.path for r in scoped if not r.param_convertors)
        self.patterns = [r.path_regex for r in scoped if r.param_convertors]

    def __call__(self, path: str) -> bool:
        return path in self.static or any(p.match(path) for p in self.patterns)


class RouteIndex:
    __slots__ = ("dynamic", "routes", "static")

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        self.dynamic = [r for r in self.routes if r.param_convertors]
        self.static: dict[str, list[Route]] = {}
        for route in self.routes:
            if not route.param_convertors and route.path not in self.static:
                path = route.path
                self.static[path] = [
                    r
                    for r in self.routes
                    if r.path == path or (r.param_convertors and r.path_regex.match(path))
                ]

    def candidates(self, path: str) -> list[Route]:
        """The routes that may match `path`, in order."""
        found = self.static.get(path)
        if found is None and path.endswith("\n"):
            # a route's pattern ends in `$`, which also matches before a final newline
            found = self.static.get(path[:-1])
        return self.dynamic if found is None else found

    async def dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Call the matching endpoint directly: its errors propagate to the caller (the
        edge's envelope)."""
        allowed: Route | None = None
        for route in self.candidates(get_route_path(scope)):
            match, child = route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                scope[ROUTE_KEY] = route
                response = await route.endpoint(Request(scope, receive))
                await response(scope, receive, send)
                return
            if match is Match.PARTIAL and allowed is None:
                allowed = route
        method, path = scope["method"], scope["path"]
        if allowed is not None:
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed on {path}")
        raise ApiError(404, "route_not_found", f"no route {method} {path}")
