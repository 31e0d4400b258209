"""Degraded models: a model whose prediction is not finite (NaN, ±inf) is reported, not hidden.

The answer carries `"prediction": null, "degraded": true`; the model's status (GET model)
shows since when, at which seq and on which route; `/ready` lists it in its details; and one
`model.degraded` event is published per model incarnation (its uid: activating a version
or recreating the model starts afresh). The flag lives in the state store, so every instance
reports the same.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from shared.events import EventBus
from shared.state.interfaces import DegradedState

KIND = "degraded"
KEEP_SECONDS = 30 * 24 * 3600  # the flag (and the once-only event) last this long
SHOWN_ON_READY = 100  # models named on /ready at most


class DegradedModels:
    def __init__(self, store: DegradedState, events: EventBus) -> None:
        self.store = store
        self.events = events
        # seen by this process: (tenant, name) → uid; skips the store on repeated reports
        self._known: dict[tuple[str, str], str] = {}

    async def report(
        self, tenant: str, name: str, uid: str, version: int, seq: int, route: str
    ) -> None:
        """Flag the model (once per uid) and publish `model.degraded` the first time."""
        if self._known.get((tenant, name)) == uid:
            return
        self._known[(tenant, name)] = uid
        # SET NX: of every instance reporting the same model, exactly one publishes
        if not await self.store.try_lock(f"{KIND}:{tenant}:{name}:{uid}", KEEP_SECONDS * 1000):
            return
        status = {
            "since": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "version": version,
            "seq": seq,
            "route": route,
            "reason": "the model's prediction is not a finite number",
        }
        await self.store.put_doc(KIND, tenant, f"{name}:{uid}", json.dumps(status), KEEP_SECONDS)
        await self.events.publish(
            tenant,
            "model.degraded",
            {"name": name, **status},
            subject=name,
            source="/online-ml/predict",
        )

    async def status(self, tenant: str, name: str, uid: str | None) -> dict[str, Any] | None:
        """The model's degraded status, or None when it answers finite predictions."""
        if uid is None:
            return None
        raw = await self.store.get_doc(KIND, tenant, f"{name}:{uid}")
        if raw is None:
            return None
        self._known[(tenant, name)] = uid
        return json.loads(raw)

    def forget(self, tenant: str, name: str) -> None:
        self._known.pop((tenant, name), None)

    def summary(self, *, with_names: bool) -> dict[str, Any]:
        """For /ready: how many models this process has seen degraded (and which, outside
        ENV=prod: /ready answers without a tenant key)."""
        shown: dict[str, Any] = {"count": len(self._known)}
        if with_names:
            shown["models"] = sorted(f"{t}/{n}" for t, n in self._known)[:SHOWN_ON_READY]
        return shown
