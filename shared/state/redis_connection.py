"""One connection to the Redis that holds the state, shared by everything stored there.

The model store (shared/state/redis_store.py), the series windows (shared/state/series.py)
and the tenant key records (shared/state/tenant_keys.py) each hold this object, built once
by the model store: one client, one breaker and one error mapping, so a store that just
failed fails every caller at once, whichever of them it is. Nobody reaches into another
module's client: they all call through here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis import asyncio as aioredis
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from shared.monitoring.prometheus import count_state_error
from shared.state.base import StateUnavailable
from shared.state.breaker import CircuitBreaker

T = TypeVar("T")


class RedisConnection:
    def __init__(
        self, url: str, timeout_seconds: float = 2.0, breaker_cooldown_seconds: float = 0.0
    ) -> None:
        # No automatic retries: a resent append could apply twice. Clients retry with an
        # Idempotency-Key instead, which is exactly-once.
        self.client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self.breaker = CircuitBreaker(breaker_cooldown_seconds)

    def script(self, source: str) -> AsyncScript:
        """A script of shared/state/lua.py, registered on this connection (EVALSHA)."""
        return self.client.register_script(source)  # type: ignore[return-value]

    async def call(self, operation: Callable[[], Awaitable[T]], *, probe: bool = False) -> T:
        """One store call through the breaker (shared/state/breaker.py) and the error mapping
        (unreachable → StateUnavailable). `probe` tries the store even while the breaker is
        open (readiness)."""
        if not probe and not self.breaker.admit():
            raise StateUnavailable(
                "state store unreachable: failing fast after a recent failure "
                "(STATE_BREAKER_COOLDOWN_SECONDS)"
            )
        try:
            result = await operation()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            self.breaker.failed()
            count_state_error(exc.__class__.__name__)
            raise StateUnavailable(f"state store unreachable: {exc.__class__.__name__}") from exc
        except Exception:
            self.breaker.succeeded()  # the store answered (with an error of its own)
            raise
        except BaseException:
            self.breaker.abandoned()  # cancelled: no news about the store
            raise
        self.breaker.succeeded()
        return result

    async def close(self) -> None:
        await self.client.aclose()
