"""Champion / challenger: while a `challenger` alias is set, every sample the champion learns
(learn, predict_learn, the ingest fan-out: `shared/serving.py` tells this module) the shadow
learns too, every predict_learn also scores the challenger on the same sample (a shadow
online model, never returned), and both are compared side by side; optional automatic
promotion.

What is compared fits the task. Regressors and classifiers: their errors (MAE/RMSE,
accuracy), summed in counters. Detectors and clusterers: what the monitoring reports of them
(score quantiles, flagged rate, ROC AUC where flags arrive; cluster sizes and the two
partitions' agreement), folded by the monitor from the shadow's outcomes, each of which
carries the champion's answer beside the shadow's (shared/monitoring/comparison.py). They
are not promoted automatically: without a ground truth on every sample there is no error to
beat by a margin.

The shadow is an online model named `<model>@challenger` in the state store ('@' is not
allowed in model names, so it can never clash); its learn log is its own.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from shared.errors import ApiError
from shared.online import OnlineModels
from shared.schemas import Sample
from shared.state.base import Idempotency
from shared.state.interfaces import ShadowState

log = logging.getLogger("ml.challenger")
COMPARE = "compare"
CHECK_SECONDS = 2.0  # how stale an instance's "is there a challenger?" answer may be


# (tenant, model, blob, meta) -> the version number the challenger's state became, activated
# and with the challenger alias removed. A callable, not the lifecycle: the lifecycle starts
# and stops the shadow, so importing it here would close an import circle.
Promote = Callable[[str, str, bytes, dict[str, Any]], Awaitable[int]]


class SideBySide(Protocol):
    """A detector's or clusterer's comparison, as the monitor folds it."""

    def side(self, side: str) -> dict[str, Any]:
        """One side's statistics ("champion" or "challenger")."""

    def between(self) -> dict[str, Any]:
        """What compares the two sides directly."""


# (tenant, shadow name, shadow uid) -> the comparison folded from the shadow's outcomes up
# to now, None before that shadow scored a sample. A callable: the monitor is above.
ShadowComparison = Callable[[str, str, str], Awaitable[SideBySide | None]]
UNSUPERVISED = ("anomaly", "clustering")


def shadow_name(model: str) -> str:
    return f"{model}@challenger"


class Challengers:
    def __init__(
        self,
        models: OnlineModels,
        promote: Promote,
        compared: ShadowComparison,
        *,
        state: ShadowState,
        promote_margin: float | None,
        window: int,
    ) -> None:
        self.models, self.promote, self.compared = models, promote, compared
        self.state = state  # is there a shadow, its compare counters, the promotion lock
        self.promote_margin, self.window = promote_margin, window
        self._known: dict[tuple[str, str], tuple[float, bool]] = {}

    async def start(
        self, tenant: str, model: str, version: int, definition: dict[str, Any], blob: bytes
    ) -> None:
        """(Re)start the shadow from the challenger version's artifact `blob` (`definition`
        is the champion's record); counters restart."""
        record = {
            **definition,
            "name": shadow_name(model),
            "version": version,
            "uid": uuid.uuid4().hex,
            "shadow_of": model,
        }
        if await self.models.replace(tenant, record, blob) is None:
            await self.models.install(tenant, record, blob)
        await self.state.reset_counters(COMPARE, tenant, model)
        self._known[tenant, model] = (time.monotonic() + CHECK_SECONDS, True)

    async def stop(self, tenant: str, model: str) -> None:
        await self.models.delete(tenant, shadow_name(model))
        await self.state.reset_counters(COMPARE, tenant, model)
        self._known[tenant, model] = (time.monotonic() + CHECK_SECONDS, False)

    async def active(self, tenant: str, model: str) -> bool:
        expires, known = self._known.get((tenant, model), (0.0, False))
        if expires > time.monotonic():
            return known
        exists = await self.state.get_record(tenant, shadow_name(model)) is not None
        self._known[tenant, model] = (time.monotonic() + CHECK_SECONDS, exists)
        return exists

    async def predict_learned(
        self,
        tenant: str,
        model: str,
        x: Any,
        y: Any,
        idempotency: Idempotency | None,
        answer: dict[str, Any],
    ) -> None:
        """The champion answered `answer` for (x, y): the shadow predicts and learns the same
        sample and both predictions are scored."""
        if not await self.active(tenant, model):
            return
        # a detector's or clusterer's answer rides in the shadow's outcome, compared there
        paired = _unsupervised_answer(answer)
        try:
            # the same Idempotency-Key on the shadow's own log: a retry is a replay there too
            shadow = await self.models.predict_learn(
                tenant, shadow_name(model), x, y, idempotency, paired
            )
        except ApiError as exc:  # the shadow never fails the champion's request
            log.warning("challenger of %s/%s failed: %s", tenant, model, exc.message)
            return
        if paired is not None:
            return
        classifier = "proba" in answer
        await self._score(
            tenant, model, y, classifier, answer.get("prediction"), shadow.get("prediction")
        )

    async def learned(
        self, tenant: str, model: str, samples: list[Sample], idempotency: Idempotency | None
    ) -> None:
        """The champion learned `samples`: the shadow learns them too (nothing to score, no
        prediction was made), so both sides stay fed by the same stream."""
        if not await self.active(tenant, model):
            return
        try:
            await self.models.learn(tenant, shadow_name(model), samples, idempotency)
        except ApiError as exc:  # the shadow never fails the champion's request
            log.warning("challenger of %s/%s failed: %s", tenant, model, exc.message)

    async def _score(
        self, tenant: str, model: str, y: Any, classifier: bool, champion: Any, challenger: Any
    ) -> None:
        if champion is None or challenger is None:
            return
        deltas: dict[str, float] = {"n": 1.0}
        for side, predicted in (("champion", champion), ("challenger", challenger)):
            if classifier:
                deltas[f"{side}_correct"] = float(predicted == y)
            else:
                error = float(y) - float(predicted)
                deltas[f"{side}_abs"] = abs(error)
                deltas[f"{side}_sq"] = error * error
        await self.state.add_counters(COMPARE, tenant, model, deltas)
        if self.promote_margin is not None:
            await self._maybe_promote(tenant, model)

    async def compare(
        self, tenant: str, model: str, champion_version: Any, challenger_version: Any
    ) -> dict[str, Any]:
        shadow = await self.state.get_record(tenant, shadow_name(model))
        record = json.loads(shadow) if shadow is not None else None
        if record is not None and record.get("task") in UNSUPERVISED:
            return await self._compare_unsupervised(
                tenant, model, record, champion_version, challenger_version
            )
        counters = await self.state.get_counters(COMPARE, tenant, model)
        n = int(counters.get("n", 0))

        def side(name: str, version: Any) -> dict[str, Any]:
            shown: dict[str, Any] = {"version": version, "n": n}
            if f"{name}_correct" in counters:
                shown["accuracy"] = counters[f"{name}_correct"] / n if n else None
            elif n:
                shown["mae"] = counters.get(f"{name}_abs", 0.0) / n
                shown["rmse"] = math.sqrt(counters.get(f"{name}_sq", 0.0) / n)
            return shown

        return {
            "name": model,
            "champion": side("champion", champion_version),
            "challenger": side("challenger", challenger_version)
            if await self.active(tenant, model)
            else None,
            "auto_promotion": {"margin": self.promote_margin, "window": self.window},
        }

    async def _compare_unsupervised(
        self,
        tenant: str,
        model: str,
        shadow: dict[str, Any],
        champion_version: Any,
        challenger_version: Any,
    ) -> dict[str, Any]:
        compared = await self.compared(tenant, shadow_name(model), str(shadow.get("uid")))

        def side(name: str, version: Any) -> dict[str, Any]:
            return {"version": version, **(compared.side(name) if compared else {"n": 0})}

        return {
            "name": model,
            "task": shadow.get("task"),
            "champion": side("champion", champion_version),
            "challenger": side("challenger", challenger_version),
            **(compared.between() if compared else {}),
            "auto_promotion": {"margin": None, "window": self.window},
        }

    async def _maybe_promote(self, tenant: str, model: str) -> None:
        """Promote when, over at least `window` shared samples, the challenger's error is
        below the champion's by the margin: its live state becomes a version and is activated."""
        counters = await self.state.get_counters(COMPARE, tenant, model)
        n = counters.get("n", 0.0)
        if n < self.window or self.promote_margin is None:
            return
        if "champion_correct" in counters:
            champion_error = 1 - counters["champion_correct"] / n
            challenger_error = 1 - counters["challenger_correct"] / n
        else:
            champion_error = counters["champion_abs"] / n
            challenger_error = counters["challenger_abs"] / n
        if challenger_error >= champion_error * (1 - self.promote_margin):
            return
        if not await self.state.try_lock(f"{{{tenant}:{model}}}:promote", 30_000):
            return
        try:
            record, seq, blob = await self.models.snapshot(tenant, shadow_name(model))
            meta = {
                "source": "challenger",
                "parent": record.get("version"),
                "seq": seq,
                "metrics": {
                    "champion_error": champion_error,
                    "challenger_error": challenger_error,
                    "samples": n,
                },
            }
            version = await self.promote(tenant, model, blob, meta)
            log.info("promoted challenger of %s/%s as version %s", tenant, model, version)
        finally:
            await self.state.release_lock(f"{{{tenant}:{model}}}:promote")


def _unsupervised_answer(answer: dict[str, Any]) -> dict[str, Any] | None:
    """The champion's answer as the shadow logs it beside its own: a detector's score and
    flag, a clusterer's cluster; None for a supervised answer (compared by counters)."""
    if "score" in answer:
        return {"p": answer["score"], "a": answer.get("is_anomaly")}
    if "cluster" in answer:
        return {"p": answer["cluster"]}
    return None
