"""One deadline per request (REQUEST_DEADLINE_SECONDS), set by the HTTP edge.

Requests to one model queue on its lock. Without a deadline each waiter waited for every
request ahead of it, and during a state-store stall each of those waited a full
STATE_TIMEOUT_SECONDS: the n-th waiter answered after n timeouts. A waiter now gives up when
its own request's deadline passes, whatever is ahead of it.
"""

from __future__ import annotations

import asyncio
import contextvars
import time

from shared.errors import ApiError

# time.monotonic() by which the current request must be answered; None outside a request
# (background work, CLIs), which waits as long as it takes.
deadline_var: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "deadline", default=None
)


def remaining() -> float | None:
    """Seconds left to the current request's deadline (0 when past), None without one."""
    deadline = deadline_var.get()
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _free(lock: asyncio.Lock) -> bool:
    """Whether acquire() returns without suspending: not held and nobody queued (a released
    lock's next waiter has it reserved). Then no timer is armed and cancelled for it, the
    usual case on the hot path. `_waiters` is the queue asyncio.Lock.acquire itself checks."""
    return not lock.locked() and not getattr(lock, "_waiters", None)


async def acquire(lock: asyncio.Lock, what: str) -> None:
    """Take `lock` before the request's deadline, or answer 503 model_busy."""
    left = remaining()
    if left is None or _free(lock):
        await lock.acquire()
        return
    try:
        async with asyncio.timeout(left):
            await lock.acquire()
    except TimeoutError:
        raise ApiError(
            503,
            "model_busy",
            f"{what} stayed busy past this request's deadline (REQUEST_DEADLINE_SECONDS); retry",
            {"Retry-After": "1"},
        ) from None
