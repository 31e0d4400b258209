"""A small circuit breaker in front of the state store (STATE_BREAKER_COOLDOWN_SECONDS).

When a call fails (unreachable, timed out), the store is known down: for the cool-down every
call fails at once instead of each waiting STATE_TIMEOUT_SECONDS on a stalled store, so
requests queued behind one model's lock answer 503 in one timeout, not one timeout each.
After the cool-down a single call probes the store (the others still fail fast); its success
closes the breaker, its failure starts another cool-down. `/ready`'s ping always tries the
store, so a readiness probe closes the breaker as soon as the store is back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import Counter

FAST_FAILURES = Counter(
    "ml_state_store_fast_failures_total",
    "State-store calls refused without trying, while the breaker was open after a failure",
)


class CircuitBreaker:
    """Closed → (a failure) open for `cooldown` → one probe → closed or open again.

    The event loop is the only caller, so no lock: every method runs without awaiting.
    """

    def __init__(
        self, cooldown_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.cooldown = cooldown_seconds
        self.clock = clock
        self._open_until: float | None = None  # None: closed
        self._probing = False
        self.refused = 0  # calls failed fast since start (also FAST_FAILURES)

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def admit(self) -> bool:
        """May a call go to the store now? Counts the refusal when not."""
        if self._open_until is None or self.cooldown == 0:
            return True
        if self.clock() >= self._open_until and not self._probing:
            self._probing = True  # this call is the probe
            return True
        self.refused += 1
        FAST_FAILURES.inc()
        return False

    def succeeded(self) -> None:
        """The store answered: closed."""
        self._open_until = None
        self._probing = False

    def failed(self) -> None:
        """The store did not answer: open for another cool-down."""
        self._open_until = self.clock() + self.cooldown
        self._probing = False

    def abandoned(self) -> None:
        """A call ended without telling (cancelled): let another call probe."""
        self._probing = False
