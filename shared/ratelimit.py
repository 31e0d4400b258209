"""Per-tenant rate limit (`RATE_LIMIT_PER_MINUTE`), shared by every instance via the state store.

The algorithm is GCRA (the generic cell rate algorithm): a token bucket of `limit` tokens that
refills one token every `60 s / limit`, kept as a single number per tenant, the *theoretical
arrival time* (TAT) of the next request. So a fresh tenant may burst `limit` requests, then
gets one more every interval; state is O(1) per tenant and expires on its own.

Both backends run exactly `gcra_step` on integer microseconds: `MemoryStateStore` in Python on
the event loop (atomic: no await inside), `RedisStateStore` as `GCRA` (shared/state/lua.py),
one EVALSHA on the key `ml:{<tenant>}:ratelimit` (hash tag: one slot per tenant on Redis
Cluster) with the clock read inside the script (`TIME`), so instances' clocks never matter.
"""

from __future__ import annotations

import math

from shared.errors import ApiError

WINDOW_US = 60_000_000


def gcra_params(per_minute: int) -> tuple[int, int]:
    """(interval, tolerance) in µs for `per_minute`; integers so both backends agree exactly."""
    interval = max(1, WINDOW_US // per_minute)
    return interval, (per_minute - 1) * interval


def gcra_step(tat: int, now: int, interval: int, tolerance: int) -> tuple[int, int]:
    """One request at `now` against the stored `tat` (0: none).

    Returns (new tat, 0) when allowed, or (tat unchanged, µs to wait) when refused.
    """
    tat = max(tat, now)
    wait = tat - now - tolerance
    if wait > 0:
        return tat, wait
    return tat + interval, 0


def bucket_key(tenant: str) -> str:
    return f"ml:{{{tenant}}}:ratelimit"


def rate_limited(per_minute: int, wait_us: int) -> ApiError:
    """429 with Retry-After in whole seconds (rounded up: retrying earlier is refused again)."""
    seconds = max(1, math.ceil(wait_us / 1_000_000))
    return ApiError(
        429,
        "rate_limited",
        f"rate limit of {per_minute} requests per minute for this tenant exceeded; "
        f"retry after {seconds} s",
        {"Retry-After": str(seconds)},
    )
