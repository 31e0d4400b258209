"""The data plane: the one façade every route calls to predict, learn and forecast
(architecture.md §2, §4).

Routes (native, compat, batch, the ingest fan-out) never call `OnlineModels` or the lifecycle
to serve: they call `Serving`, so what must happen around a model call happens on every route
alike. In particular the challenger's shadow sees every learned sample, whichever route fed
it (`learn`, `predict_learn`, the ingest fan-out): a shadow that missed some samples would
be compared with a champion that learned more.

`Serving` is built by constructor injection from small collaborators: the online models, the
shadow (the challenger), the pinned-version reads (frozen versions of the registry) and the
monitor.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from shared.monitoring.hooks import Observer
from shared.online import OnlineModels
from shared.schemas import Sample
from shared.state.base import Idempotency


class Shadow(Protocol):
    """What the data plane tells the challenger after the champion served (never fails it)."""

    async def predict_learned(
        self,
        tenant: str,
        model: str,
        x: Any,
        y: Any,
        idempotency: Idempotency | None,
        answer: dict[str, Any],
    ) -> None:
        """The champion predicted-and-learned (x, y) and answered `answer`."""

    async def learned(
        self, tenant: str, model: str, samples: list[Sample], idempotency: Idempotency | None
    ) -> None:
        """The champion learned `samples` (in order)."""


class PinnedVersions(Protocol):
    """Frozen registered versions (the lifecycle reads them from the registry)."""

    async def resolve(self, tenant: str, name: str, version: str | None, alias: str | None) -> int:
        """The version number named by `?version=` or `?alias=`."""

    async def predict_version(self, tenant: str, name: str, version: int, x: Any) -> dict[str, Any]:
        """Predict with that version exactly as frozen (it never learns)."""

    async def predict_version_batch(
        self, tenant: str, name: str, version: int, instances: list[Any]
    ) -> dict[str, Any]:
        """`predict_version` per instance: one result or one error each, in order."""

    async def describe_version(self, tenant: str, name: str, version: int) -> dict[str, Any]:
        """The version's task and the features it had learned when frozen."""

    async def version_numbers(self, tenant: str, name: str) -> list[int]:
        """The registered versions, ascending."""


class Serving:
    def __init__(
        self,
        models: OnlineModels,
        shadow: Shadow,
        pinned: PinnedVersions,
        monitor: Observer,
    ) -> None:
        self.models = models
        self.shadow = shadow
        self.pinned = pinned
        # the online models report their own calls; pinned predictions are reported here
        self.monitor = monitor

    async def predict(
        self,
        tenant: str,
        name: str,
        x: Any,
        *,
        version: str | None = None,
        alias: str | None = None,
    ) -> dict[str, Any]:
        """Predict with the live model, or with a registered version or alias as frozen."""
        if version is None and alias is None:
            return await self.models.predict(tenant, name, x)
        started = time.perf_counter()
        pinned = await self.pinned.resolve(tenant, name, version, alias)
        answer = await self.pinned.predict_version(tenant, name, pinned, x)
        self.monitor.predicted(tenant, name, "predict", started, x, answer)  # audited too
        return answer

    async def predict_batch(
        self,
        tenant: str,
        name: str,
        instances: list[Any],
        *,
        version: str | None = None,
        exact: bool = False,
    ) -> dict[str, Any]:
        """One result or error per instance, with the live model or (`version`) a registered
        version as frozen. `exact`: each result equals `predict` of that instance float for
        float (no vectorised predict_many); a pinned version is always exact."""
        if version is None:
            return await self.models.predict_batch(tenant, name, instances, vectorised=not exact)
        started = time.perf_counter()
        pinned = await self.pinned.resolve(tenant, name, version, None)
        answer = await self.pinned.predict_version_batch(tenant, name, pinned, instances)
        self.monitor.predicted_batch(tenant, name, started, instances, answer)
        return answer

    async def describe(
        self, tenant: str, name: str, *, version: str | None = None
    ) -> dict[str, Any]:
        """The model's task, whether it reads text, and the features it has learned (name →
        kind), live or (`version`) as that registered version was frozen."""
        if version is None:
            return await self.models.describe(tenant, name)
        pinned = await self.pinned.resolve(tenant, name, version, None)
        return await self.pinned.describe_version(tenant, name, pinned)

    async def versions(self, tenant: str, name: str) -> list[int]:
        """The model's registered versions, ascending."""
        return await self.pinned.version_numbers(tenant, name)

    async def predict_learn(
        self, tenant: str, name: str, x: Any, y: Any, idempotency: Idempotency | None
    ) -> dict[str, Any]:
        """Prequential step on the live model; the challenger's shadow, if any, sees it too."""
        answer = await self.models.predict_learn(tenant, name, x, y, idempotency)
        await self.shadow.predict_learned(tenant, name, x, y, idempotency, answer)
        return answer

    async def learn(
        self, tenant: str, name: str, samples: list[Sample], idempotency: Idempotency | None
    ) -> dict[str, Any]:
        """Learn samples in order; the challenger's shadow, if any, learns them too."""
        answer = await self.models.learn(tenant, name, samples, idempotency)
        await self.shadow.learned(tenant, name, samples, idempotency)
        return answer

    async def forecast(
        self, tenant: str, name: str, horizon: int, xs: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        return await self.models.forecast(tenant, name, horizon, xs)

    async def recursive_forecast(
        self, tenant: str, name: str, window: list[float], horizon: int
    ) -> dict[str, Any]:
        """A lag regressor's forecast, each prediction fed back as in_1 (never learns)."""
        return await self.models.recursive_forecast(tenant, name, window, horizon)
