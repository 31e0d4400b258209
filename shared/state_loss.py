"""Loss detection: tell a state store that came back empty from a model that is simply gone.

The state store holds an epoch marker per model (`ml:{<tenant>:<model>}:epoch`, in the
model's hash slot), set with SET NX by the first instance to use it on an empty store: on a
Cluster a shard that comes back empty loses exactly the markers of the models it held, so
its loss is seen by those models and only by them (one global key would live on one shard).
Versions before kept one store-wide `ml:epoch`: a model recorded under it that has no epoch
of its own yet is compared with that key (read, never written), so an upgrade alone never
reports a loss. The registry's state.json records, per model, the epoch of the store the
model was last seen in and the highest seq known there (written at create, version,
activation and every compaction). When a model the registry knows is missing from the store
and the store's epoch is not the one recorded, the store lost it: the model is recovered from
its newest registry version, its seq continues from the recorded high-water mark (never back
at 0), and the loss is reported — an ERROR log line, a `state.lost` event and `state_lost`
in the model's status — with the samples known to be lost.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from shared.registry import Registry
from shared.registry.base import STATE, update_doc
from shared.state.interfaces import StoreEpoch

log = logging.getLogger("ml.state_loss")


class StateLoss:
    def __init__(self, store: StoreEpoch, registry: Registry) -> None:
        self.store = store
        self.registry = registry

    async def epoch(self, tenant: str, name: str) -> str:
        """The store's epoch for this model (a new one if it is empty: first use, or lost)."""
        return await self.store.epoch(tenant, name, uuid.uuid4().hex)

    async def remember(self, tenant: str, name: str, *, incarnation: int, seq: int) -> None:
        """Record in the registry that the store of this epoch holds the model at `seq`."""
        epoch = await self.epoch(tenant, name)

        def change(doc: dict[str, Any]) -> None:
            same = doc.get("epoch") == epoch and doc.get("incarnation") == incarnation
            known = int(doc.get("seq", 0)) if same else 0
            doc.update(epoch=epoch, incarnation=incarnation, seq=max(known, seq))

        await update_doc(self.registry, tenant, name, STATE, change)

    async def detect(self, tenant: str, name: str, *, incarnation: int) -> int | None:
        """For a model the registry knows and the store does not: the seq the registry last
        saw if the store lost it (another epoch), else None (the same store: not a loss)."""
        doc = (await self.registry.read_doc(tenant, name, STATE)).doc
        recorded = doc.get("epoch")
        if not recorded:
            return None
        # Before epoch() gives the model an epoch of its own: recorded by an earlier version
        # under the store-wide epoch, and that store is still here.
        if recorded == await self.store.epoch_before_upgrade(tenant, name):
            return None
        if recorded == await self.epoch(tenant, name):
            return None
        return int(doc.get("seq", 0)) if doc.get("incarnation") == incarnation else 0


def loss_report(known_seq: int, base_seq: int) -> dict[str, Any]:
    """What the model's status shows: samples learned after its newest version, now gone."""
    return {
        "samples_lost": max(0, known_seq - base_seq),
        "detected_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


def log_loss(tenant: str, name: str, report: dict[str, Any], version: int, seq: int) -> None:
    log.error(
        "state store lost model %s/%s: recovered from registry version %d; %d samples learned "
        "after it are lost; seq continues at %d",
        tenant,
        name,
        version,
        report["samples_lost"],
        seq,
    )
