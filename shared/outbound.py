"""Outbound HTTP: which hosts the service calls on a tenant's behalf, and how.

A ticker source's `base_url` is chosen by a tenant, so it may only name a host listed in
TICKER_ALLOWED_HOSTS (comma-separated). A bare entry (`api.coinbase.com`) allows https to
that host on port 443; an entry written `http://host:port` (or `https://host:port`) allows
exactly that scheme, host and port. Nothing else is called: no other host, no IP literal
that is not listed, no userinfo, query or fragment in the base URL (so `?`, `#` and `@`
cannot move the host or swallow the fixed path we append), and redirects are never followed.

Whatever goes wrong upstream (refused, timed out, a redirect, an error status, a malformed
answer) the caller gets the same 502 `upstream_unavailable` with a fixed message: nothing of
the upstream's status, address or error text, which would make the service a port scanner.
The details go to the server log, for the operator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from shared.errors import ApiError

SETTING = "TICKER_ALLOWED_HOSTS"
_HOST = r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])"
# scheme://host[:port][/path] where the path holds only plain segment characters.
_BASE_URL = re.compile(
    rf"^(?P<scheme>https?)://{_HOST}(?::(?P<port>[0-9]{{1,5}}))?(?P<path>(?:/[A-Za-z0-9._~-]+)*)/?$"
)
_ENTRY = re.compile(rf"^(?:(?P<scheme>https?)://)?{_HOST}(?::(?P<port>[0-9]{{1,5}}))?/?$")
_DEFAULT_PORT = {"https": 443, "http": 80}


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    def url(self, path: str) -> str:
        """`path` must start with "/" and hold only validated characters."""
        return f"{self.scheme}://{self.host}:{self.port}{path}"


def _origin(scheme: str | None, host: str, port: str | None) -> Origin:
    scheme = (scheme or "https").lower()
    number = int(port) if port else _DEFAULT_PORT[scheme]
    if not 1 <= number <= 65535:
        raise ValueError("port out of range")
    return Origin(scheme, host.lower(), number)


def parse_allowed(value: str) -> frozenset[Origin]:
    """The origins TICKER_ALLOWED_HOSTS allows; ValueError names a malformed entry."""
    origins = set()
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        match = _ENTRY.match(entry)
        if match is None or (match["scheme"] is None and match["port"] is not None):
            raise ValueError(
                f"{entry!r} is not a host: write host (https only) or http://host:port"
            )
        origins.add(_origin(match["scheme"], match["host"], match["port"]))
    return frozenset(origins)


def parse_base_url(base_url: str) -> tuple[Origin, str]:
    """(origin, base path without trailing slash), or ValueError for anything but a plain
    scheme://host[:port][/path]."""
    match = _BASE_URL.match(base_url)
    if match is None or ".." in match["path"].split("/"):
        raise ValueError("not a plain scheme://host[:port][/path] URL")
    return _origin(match["scheme"], match["host"], match["port"]), match["path"]


def not_allowed(setting: str = SETTING) -> ApiError:
    return ApiError(
        422,
        "host_not_allowed",
        f"base_url must be http(s)://host[:port][/path] with a host the operator allows in "
        f"{setting} (no userinfo, query or fragment)",
    )


def unavailable(what: str, attempts: int) -> ApiError:
    # Fixed text: never the upstream's status, address or error.
    return ApiError(
        502,
        "upstream_unavailable",
        f"the {what} did not give a usable answer ({attempts} times); nothing observed",
        {"Retry-After": "5"},
    )


@dataclass(frozen=True)
class OutboundPolicy:
    """The origins a tenant-chosen base URL may name."""

    allowed: frozenset[Origin]
    setting: str = SETTING

    def base(self, base_url: str) -> tuple[Origin, str]:
        """The checked (origin, path) of `base_url`; 422 naming the setting otherwise."""
        try:
            origin, path = parse_base_url(base_url)
        except ValueError:
            raise not_allowed(self.setting) from None
        if origin not in self.allowed:
            raise not_allowed(self.setting)
        return origin, path


__all__ = [
    "Origin",
    "OutboundPolicy",
    "not_allowed",
    "outbound_policy",
    "parse_allowed",
    "parse_base_url",
    "unavailable",
]


class AllowedHosts(Protocol):
    """The one setting read here. A Protocol, not shared.settings.Settings: the settings
    validate TICKER_ALLOWED_HOSTS with this module's parser, so importing them here would
    close an import circle."""

    @property
    def ticker_allowed_hosts(self) -> str: ...


def outbound_policy(settings: AllowedHosts) -> OutboundPolicy:
    """TICKER_ALLOWED_HOSTS as a policy (validated at start-up by Settings)."""
    return OutboundPolicy(parse_allowed(settings.ticker_allowed_hosts))
