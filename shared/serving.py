"""The data plane: the one façade every route calls to predict, learn and forecast
(architecture.md §2, §4).

Routes (native, compat, batch, the ingest fan-out) never call `OnlineModels` or the lifecycle
to serve: they call `Serving`, so what must happen around a model call happens on every route
alike. In particular the challenger's shadow sees every learned sample, whichever route fed
it (`learn`, `predict_learn`, the ingest fan-out): a shadow that missed some samples would
be compared with a champion that learned more.

`Serving` is built by constructor injection from small collaborators: the online models, the
shadow (the challenger), the pinned-version reads (frozen versions of the registry), the
monitor and the kept predictions.

Delayed labels: every prediction it answers carries a `prediction_id` under which its
features and prediction are kept (`shared/state/predictions.py`); `label` later learns those
features with the label through the same learn log, and the shadow learns them too.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from shared.labels import (
    Label,
    already_labelled,
    features_text,
    new_prediction_id,
    new_prediction_ids,
)
from shared.monitoring.hooks import Observer
from shared.monitoring.outcomes import encode_outcome, encode_outcomes
from shared.online import OnlineModels
from shared.schemas import Sample
from shared.state.base import Idempotency
from shared.state.predictions import KeptPredictions, Pending


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
        kept: KeptPredictions,
    ) -> None:
        self.models = models
        self.shadow = shadow
        self.pinned = pinned
        # the online models report their own calls; pinned predictions are reported here
        self.monitor = monitor
        self.kept = kept  # each prediction's x and answer, for a later label

    async def predict(
        self,
        tenant: str,
        name: str,
        x: Any,
        *,
        version: str | None = None,
        alias: str | None = None,
        prediction_id: str | None = None,
    ) -> dict[str, Any]:
        """Predict with the live model, or with a registered version or alias as frozen; the
        answer carries `prediction_id` (the client's, or a new one) under which it is kept
        for a later label. Live: one state round trip, the keep and the freshness check in
        one script; a pinned version: the keep."""
        prediction_id = prediction_id or new_prediction_id()
        if version is None and alias is None:
            # the keep rides in the live model's freshness check: one round trip in all
            answer = await self.models.predict(tenant, name, x, (self.kept, prediction_id))
        else:
            started = time.perf_counter()
            pinned = await self.pinned.resolve(tenant, name, version, alias)
            answer = await self.pinned.predict_version(tenant, name, pinned, x)
            answer = {**answer, "prediction_id": prediction_id}  # audited with it, for labels
            self.monitor.predicted(tenant, name, "predict", started, x, answer)  # audited too
            kept = await self.kept.keep(
                tenant, name, [(prediction_id, _features(x), encode_outcome(answer, time.time()))]
            )
            if not kept[0]:
                raise already_labelled(prediction_id)
        return {**answer, "prediction_id": prediction_id}

    async def predict_batch(
        self,
        tenant: str,
        name: str,
        instances: list[Any],
        *,
        version: str | None = None,
        ids: list[str] | None = None,
    ) -> dict[str, Any]:
        """One result or error per instance, with the live model or (`version`) a registered
        version as frozen; each result equals `predict` of that instance float for float.
        Each result is kept under its own `prediction_id` (`ids`, one per instance, or new
        ones) for a later label, in one round trip for the whole batch."""
        # chosen before the model call, so the audit rows carry them (a label joins on them)
        chosen = ids or new_prediction_ids(len(instances))
        if version is None:
            batch = await self.models.predict_batch(tenant, name, instances, prediction_ids=chosen)
        else:
            started = time.perf_counter()
            pinned = await self.pinned.resolve(tenant, name, version, None)
            batch = await self.pinned.predict_version_batch(tenant, name, pinned, instances)
            for result, prediction_id in zip(batch["results"], chosen, strict=True):
                if "error" not in result:
                    result["prediction_id"] = prediction_id
            self.monitor.predicted_batch(tenant, name, started, instances, batch)
        answered = [
            (x, r) for x, r in zip(instances, batch["results"], strict=True) if "error" not in r
        ]
        outcomes = encode_outcomes([r for _, r in answered], batch["model_version"], time.time())
        items = [
            (result["prediction_id"], _features(x), outcome)
            for (x, result), outcome in zip(answered, outcomes, strict=True)
        ]
        if items:
            kept = await self.kept.keep(tenant, name, items)
            for (prediction_id, _, _), done in zip(items, kept, strict=True):
                if not done:  # a client-chosen id that was labelled already
                    raise already_labelled(prediction_id)
        return batch

    async def describe(
        self, tenant: str, name: str, *, version: str | None = None
    ) -> dict[str, Any]:
        """The model's task, whether it reads text, and the features it has learned (name →
        kind), live or (`version`) as that registered version was frozen."""
        if version is None:
            return await self.models.describe(tenant, name)
        pinned = await self.pinned.resolve(tenant, name, version, None)
        return await self.pinned.describe_version(tenant, name, pinned)

    async def task(self, tenant: str, name: str) -> str:
        """The model's task, read from its record (no model load): a route that serves only
        some tasks refuses the others with it before anything is learned or kept."""
        return str((await self.models.record(tenant, name))["task"])

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

    async def label(
        self, tenant: str, name: str, labels: list[Label], idempotency: Idempotency | None
    ) -> dict[str, Any]:
        """Delayed labels: learn each label with the features kept at its prediction (seq at
        label time); one result or error per label. The shadow learns the same samples."""
        answer, samples = await self.models.learn_labelled(
            tenant, name, labels, idempotency, self.kept
        )
        if samples:
            await self.shadow.learned(tenant, name, samples, idempotency)
        return answer

    async def pending_labels(self, tenant: str, name: str) -> Pending:
        """Kept predictions still waiting for their label."""
        return await self.kept.pending(tenant, name, time.time())

    async def forget_predictions(self, tenant: str, name: str) -> None:
        """The model is gone: so are its kept predictions."""
        await self.kept.forget(tenant, name)

    async def forecast(
        self, tenant: str, name: str, horizon: int, xs: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        return await self.models.forecast(tenant, name, horizon, xs)

    async def recursive_forecast(
        self, tenant: str, name: str, window: list[float], horizon: int
    ) -> dict[str, Any]:
        """A lag regressor's forecast, each prediction fed back as in_1 (never learns)."""
        return await self.models.recursive_forecast(tenant, name, window, horizon)


_features = features_text
