"""Live events out of the monitor: sampled `prediction`s and per-model `metrics`.

On the request path `predicted` only counts and, every STREAM_PREDICTION_EVERY-th prediction
of a model (in this instance), hands one event to the live publisher (which never waits).
A model that learned since the last tick gets a `metrics` event every STREAM_METRICS_SECONDS:
its ledger folded up to now (one instance per model and tick, by a short lock, so a model
served by many instances still gets one `metrics` event per tick).

The fold runs whether or not a stream listens: a listener may be on any instance (NATS core
subjects and the shared live log say nothing of who reads), so skipping it here would be
unsound. It is bounded instead: at most STREAM_METRICS_MAX_MODELS models per tick (the rest
wait for the next one), only models that learned since the last tick, and the per-model
prediction counters keep at most MAX_COUNTED_MODELS entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from shared.events.live import LivePublisher
from shared.monitoring.audit import prediction_error
from shared.monitoring.ledger import Ledger
from shared.state.base import StateUnavailable
from shared.state.interfaces import MonitorState

log = logging.getLogger("ml.monitoring")

Key = tuple[str, str]
_OUTPUT_KEYS = ("prediction", "proba", "error")
# per-model prediction counters kept (the least recently counted go first); a model dropped
# restarts its count, which only shifts which of its predictions is sampled
MAX_COUNTED_MODELS = 10_000


class LiveSampler:
    def __init__(
        self,
        publisher: LivePublisher,
        ledger: Callable[[str, str], Awaitable[Ledger]],
        store: MonitorState,
        *,
        every: int,
        metrics_seconds: float,
        max_models_per_tick: int = 1000,
    ) -> None:
        self.publisher = publisher
        self.ledger = ledger  # the monitor's fold (dependency, not the monitor itself)
        self.store = store
        self.every = every
        self.metrics_seconds = metrics_seconds
        self.max_models_per_tick = max_models_per_tick
        self._counts: dict[Key, int] = {}
        self._learning: dict[Key, None] = {}  # an ordered set: the longest waiting first
        self._ticker: asyncio.Task[None] | None = None
        self._closed = False

    def predicted(
        self, tenant: str, name: str, route: str, answer: dict[str, Any], y: Any = None
    ) -> None:
        if not self.every:
            return
        key = (tenant, name)
        count = self._counts.pop(key, 0) + 1
        self._counts[key] = count  # re-inserted: the dict's order is least recently counted
        if len(self._counts) > MAX_COUNTED_MODELS:
            del self._counts[next(iter(self._counts))]
        if count % self.every:
            return
        data: dict[str, Any] = {
            "model": name,
            "route": route,
            "version": answer.get("model_version"),
            "seq": answer.get("seq"),
            **{k: answer[k] for k in _OUTPUT_KEYS if k in answer},
        }
        if "prediction_id" in answer:
            data["prediction_id"] = answer["prediction_id"]
        if y is not None:
            data["y"] = y
            error = prediction_error(answer.get("prediction"), y)
            if error is not None:
                data["error"] = error
        self.publisher.publish(tenant, "prediction", data)

    def learning(self, tenant: str, name: str) -> None:
        self._learning.setdefault((tenant, name), None)
        if self._ticker is None and not self._closed:
            self._ticker = asyncio.get_running_loop().create_task(self._tick(), name="live-metrics")

    async def _tick(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.metrics_seconds)
            learning = list(itertools.islice(self._learning, self.max_models_per_tick))
            for key in learning:
                del self._learning[key]
            for tenant, name in learning:
                try:
                    await self._metrics(tenant, name)
                except StateUnavailable as exc:  # a store that is down: the next learn asks again
                    log.warning("live metrics of %s/%s skipped: %s", tenant, name, exc)
                except Exception:
                    log.exception("live metrics of %s/%s failed", tenant, name)

    async def _metrics(self, tenant: str, name: str) -> None:
        # one instance per model and tick; the lock expires on its own before the next tick
        ttl = max(1, int(self.metrics_seconds * 1000 * 0.9))
        if not await self.store.try_lock(f"{{{tenant}:{name}}}:live-metrics", ttl):
            return
        ledger = await self.ledger(tenant, name)
        track = ledger.versions.get(ledger.current) if ledger.current is not None else None
        if track is None:
            return
        report = track.metrics()
        report.pop("history", None)
        self.publisher.publish(
            tenant,
            "metrics",
            {"model": name, "drift": track.open_episode is not None, **report},
        )

    async def close(self) -> None:
        self._closed = True
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
