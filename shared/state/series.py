"""Series state: per series, the last N values (most recent first), a count, a source cursor
and a small config, updated atomically (Lua on Redis) so concurrent observations never
interleave lags. `memory://` and `redis://` side by side, like the model state store; the
Redis scripts are shared/state/lua.py's."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import shared.state.lua as lua
from shared.errors import ApiError
from shared.state.base import Idempotency
from shared.state.interfaces import StateStore
from shared.state.redis_connection import RedisConnection
from shared.state.redis_store import RedisStateStore


class IdempotencyConflict(ApiError):
    def __init__(self) -> None:
        super().__init__(
            409, "idempotency_conflict", "this Idempotency-Key was used with another request body"
        )


@dataclass(frozen=True)
class Observed:
    """One applied observation: the lags before it (most recent first) and the new count."""

    lags: list[float]
    count: int


@dataclass(frozen=True)
class ObserveResult:
    observed: list[Observed]
    replay: bool = False


@dataclass(frozen=True)
class SeriesWindow:
    values: list[float]  # most recent first
    count: int
    last_ts: str | None
    cursor: int


class SeriesState(Protocol):
    async def observe(
        self,
        tenant: str,
        series: str,
        points: list[tuple[float, str | None]],
        n_lags: int,
        idempotency: Idempotency | None,
        ttl_seconds: int = 86400,
    ) -> ObserveResult: ...

    async def window(self, tenant: str, series: str) -> SeriesWindow: ...

    async def reset(self, tenant: str, series: str) -> None:
        """Forget the values, the count and the source cursor (the config stays)."""

    async def claim(self, tenant: str, series: str, count: int, total: int) -> tuple[int, int]:
        """Advance the source cursor by up to `count` (never past `total`): [start, end)."""

    async def get_config(self, tenant: str, series: str) -> dict[str, Any] | None: ...

    async def put_config(self, tenant: str, series: str, config: dict[str, Any]) -> None: ...

    async def list_series(self, tenant: str) -> list[str]: ...


@dataclass
class _Series:
    values: list[float] = field(default_factory=list)
    count: int = 0
    last_ts: str | None = None
    cursor: int = 0


class MemorySeriesState:
    def __init__(self) -> None:
        self._series: dict[tuple[str, str], _Series] = {}
        self._configs: dict[tuple[str, str], dict[str, Any]] = {}
        self._seen: dict[tuple[str, str, str], tuple[str, ObserveResult]] = {}

    def _get(self, tenant: str, series: str) -> _Series:
        return self._series.setdefault((tenant, series), _Series())

    async def observe(
        self,
        tenant: str,
        series: str,
        points: list[tuple[float, str | None]],
        n_lags: int,
        idempotency: Idempotency | None,
        ttl_seconds: int = 86400,
    ) -> ObserveResult:
        if idempotency is not None and (tenant, series, idempotency.key) in self._seen:
            body_hash, seen = self._seen[tenant, series, idempotency.key]
            if body_hash != idempotency.body_hash:
                raise IdempotencyConflict
            return ObserveResult(seen.observed, True)
        state = self._get(tenant, series)
        observed = []
        for value, ts in points:
            lags = state.values[:n_lags]
            state.values = [value, *state.values][:n_lags]
            state.count += 1
            state.last_ts = ts or state.last_ts
            observed.append(Observed(lags, state.count))
        result = ObserveResult(observed)
        if idempotency is not None:
            self._seen[tenant, series, idempotency.key] = (idempotency.body_hash, result)
        return result

    async def window(self, tenant: str, series: str) -> SeriesWindow:
        state = self._get(tenant, series)
        return SeriesWindow(list(state.values), state.count, state.last_ts, state.cursor)

    async def reset(self, tenant: str, series: str) -> None:
        self._series[tenant, series] = _Series()

    async def claim(self, tenant: str, series: str, count: int, total: int) -> tuple[int, int]:
        state = self._get(tenant, series)
        start = min(state.cursor, total)
        state.cursor = min(start + count, total)
        return start, state.cursor

    async def get_config(self, tenant: str, series: str) -> dict[str, Any] | None:
        config = self._configs.get((tenant, series))
        return json.loads(json.dumps(config)) if config is not None else None

    async def put_config(self, tenant: str, series: str, config: dict[str, Any]) -> None:
        self._configs[tenant, series] = json.loads(json.dumps(config))

    async def list_series(self, tenant: str) -> list[str]:
        return sorted(s for t, s in self._configs if t == tenant)


class RedisSeriesState:
    def __init__(self, connection: RedisConnection) -> None:
        # the model store's connection: its client, breaker and error mapping
        self.connection = connection
        self._observe = connection.script(lua.SERIES_OBSERVE)
        self._claim = connection.script(lua.SERIES_CLAIM)

    @staticmethod
    def _keys(tenant: str, series: str) -> tuple[str, str]:
        tag = f"ml:series:{{{tenant}:{series}}}"
        return f"{tag}:window", f"{tag}:meta"

    async def observe(
        self,
        tenant: str,
        series: str,
        points: list[tuple[float, str | None]],
        n_lags: int,
        idempotency: Idempotency | None,
        ttl_seconds: int = 86400,
    ) -> ObserveResult:
        window, meta = self._keys(tenant, series)
        idem = f"ml:series:{{{tenant}:{series}}}:idem:{idempotency.key if idempotency else ''}"
        args: list[Any] = [
            n_lags,
            int(idempotency is not None),
            ttl_seconds,
            idempotency.body_hash if idempotency else "",
        ]
        for value, ts in points:
            args += [repr(float(value)), ts or ""]
        status, encoded = await self.connection.call(
            lambda: self._observe(keys=[window, meta, idem], args=args)
        )
        if status == b"conflict":
            raise IdempotencyConflict
        rows = json.loads(encoded)
        observed = [Observed([float(v) for v in (lags or [])], int(count)) for lags, count in rows]
        return ObserveResult(observed, status == b"replay")

    async def window(self, tenant: str, series: str) -> SeriesWindow:
        window, meta = self._keys(tenant, series)

        async def read() -> list[Any]:
            pipe = self.connection.client.pipeline(transaction=True)
            pipe.lrange(window, 0, -1)
            pipe.hgetall(meta)
            return await pipe.execute()

        values, fields = await self.connection.call(read)
        last_ts = fields.get(b"last_ts")
        return SeriesWindow(
            [float(v) for v in values],
            int(fields.get(b"count", 0)),
            last_ts.decode() if last_ts else None,
            int(fields.get(b"cursor", 0)),
        )

    async def reset(self, tenant: str, series: str) -> None:
        window, meta = self._keys(tenant, series)
        await self.connection.call(lambda: self.connection.client.delete(window, meta))

    async def claim(self, tenant: str, series: str, count: int, total: int) -> tuple[int, int]:
        _, meta = self._keys(tenant, series)
        start, stop = await self.connection.call(
            lambda: self._claim(keys=[meta], args=[count, total])
        )
        return int(start), int(stop)

    async def get_config(self, tenant: str, series: str) -> dict[str, Any] | None:
        raw = await self.connection.call(
            lambda: self.connection.client.hget(self._config_key(tenant), series)
        )
        return json.loads(raw) if raw is not None else None

    async def put_config(self, tenant: str, series: str, config: dict[str, Any]) -> None:
        await self.connection.call(
            lambda: self.connection.client.hset(
                self._config_key(tenant), series, json.dumps(config)
            )
        )

    async def list_series(self, tenant: str) -> list[str]:
        names = await self.connection.call(
            lambda: self.connection.client.hkeys(self._config_key(tenant))
        )
        return sorted(n.decode() for n in names)

    @staticmethod
    def _config_key(tenant: str) -> str:
        return f"ml:series-config:{{{tenant}}}"


def open_series_state(store: StateStore) -> SeriesState:
    """Series state on the same backend as the model state store."""
    if isinstance(store, RedisStateStore):
        return RedisSeriesState(store.connection)
    return MemorySeriesState()
