"""Model lifecycle over the registry (durable truth) and the online state (hot): create,
version, activate, alias, recover after a restart, and serve frozen versions.

aliases.json holds `{"active": v, "live": w, "aliases": {"champion": n, ...}}`: `active` is
the version the online model restarted from; `live` the newest version snapshotted from the
online model since (what a restarted memory:// process resumes from).
"""

from __future__ import annotations

import asyncio
import json
import pickle
import re
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from shared import catalog, learning, limits
from shared.challenger import Challengers
from shared.errors import ApiError, conflict, not_found, unprocessable
from shared.events import EventBus
from shared.executors import run_in
from shared.model_lock import ModelLocks
from shared.online import (
    OnlineModels,
    answer_of,
    blueprint_of,
    describe_model,
    public_record,
)
from shared.registry import Registry
from shared.registry.base import (
    MAX_VERSION,
    AliasConflict,
    VersionExists,
    VersionNotFound,
    high_water,
    raise_high_water,
)
from shared.schemas import ModelSpec
from shared.spec_proof import SpecProver
from shared.state.interfaces import LifecycleState
from shared.state_loss import StateLoss, log_loss, loss_report
from shared.tenancy import NAME_PATTERN, check_name

if TYPE_CHECKING:
    from shared.degraded import DegradedModels

RESERVED_ALIASES = {"active", "live"}
FROZEN_CACHE_SIZE = 64
VERSION_PATTERN = re.compile(r"[1-9][0-9]{0,17}")  # 1 .. MAX_VERSION, never a huge int()
INTEGER_PATTERN = re.compile(r"-?[0-9]+")


def parse_version(raw: str) -> int:
    """A version from a URL: ASCII digits, 1..10^18-1 (`str.isdigit` also accepts '²')."""
    if VERSION_PATTERN.fullmatch(raw):
        return int(raw)
    if INTEGER_PATTERN.fullmatch(raw):  # an integer, but 0, negative or over 18 digits
        raise unprocessable(f"version must be between 1 and {MAX_VERSION}", "version_out_of_range")
    raise ApiError(400, "invalid_version", "version must be a positive integer")


class Lifecycle:
    def __init__(
        self,
        models: OnlineModels,
        registry: Registry,
        events: EventBus,
        *,
        state: LifecycleState,
        challengers: Challengers | None = None,
        degraded: DegradedModels | None = None,
        lock_ttl_seconds: float = 60.0,
        lock_wait_seconds: float = 2.0,
        prover: SpecProver | None = None,
    ) -> None:
        self.models = models
        # proves a spec before it is created (in the CPU pool, or its proof workers)
        self.prover = prover or SpecProver(models.cpu)
        self.registry = registry
        self.events = events
        self.state = state  # incarnations and records, the lifecycle lock, the store's epoch
        # create, activate, version, alias and delete of one model, one at a time everywhere
        self.locks = ModelLocks(state, ttl_seconds=lock_ttl_seconds, wait_seconds=lock_wait_seconds)
        self.loss = StateLoss(state, registry)
        # immutable versions of one model incarnation (its created_at): never stale
        self._frozen: OrderedDict[tuple[str, str, Any, int], tuple[Any, Any]] = OrderedDict()
        models.recover = self.recover
        models.compacted = self._compacted
        # the shadow of a `challenger` alias, started and stopped with the alias
        self.challengers = challengers
        # models flagged degraded (a new incarnation starts afresh)
        self.degraded = degraded

    # ----- definitions -------------------------------------------------------------------

    async def create(self, tenant: str, spec: ModelSpec) -> dict[str, Any]:
        catalog.check_bounds([step.model_dump() for step in spec.steps])  # no I/O yet
        limits.check_model_count(len(await self.registry.list_models(tenant)))
        # built, learned and predicted once off the event loop: a spec that cannot work is
        # a 422 here, never a model that fails on every call
        record, blob = await self.prover.prove(spec)
        name = spec.name
        taken = conflict(f"model '{name}' already exists; DELETE it first", "model_exists")
        async with self.locks.hold(tenant, name):
            if await self.registry.get_definition(tenant, name) is not None:
                raise taken
            # A new incarnation, above any the name had: whatever still holds the old one (a
            # warm copy, a request that read it before a delete) can never write into this one.
            gen, _ = await self.state.incarnation(tenant, name)
            marks = await high_water(self.registry, tenant, name)
            record["incarnation"] = max(gen, marks.get("incarnation", 0)) + 1
            await raise_high_water(self.registry, tenant, name, incarnation=record["incarnation"])
            # a recreated name never reuses a version number (hwm.json)
            record["version"] = await self.registry.next_version(tenant, name)
            if not await self.models.install(
                tenant, record, blob, incarnation=record["incarnation"]
            ):
                raise taken
            try:
                definition = {k: v for k, v in record.items() if k not in ("uid", "version")}
                await self.registry.put_definition(tenant, name, definition)
                meta = self._meta(record, seq=0, parent=None, source="created")
                await self.registry.create_version(tenant, name, record["version"], blob, meta)
                pointers = {
                    "active": record["version"],
                    "live": record["version"],
                    "live_seq": 0,
                    "aliases": {},
                }
                # aliases.json of a model that is not defined is a leftover (a crash during
                # an older delete): this create, holding the lock, replaces it
                leftover = await self.registry.read_aliases(tenant, name)
                await self.registry.write_aliases(tenant, name, pointers, leftover.generation)
                await self.loss.remember(tenant, name, incarnation=record["incarnation"], seq=0)
            except BaseException:
                # the name is not taken by a half-made model
                await self.models.delete(tenant, name, incarnation=record["incarnation"])
                await self.registry.delete_model(tenant, name)
                raise
        await self.events.publish(
            tenant, "model.created", public_record(record), subject=name, source="/online-ml/train"
        )
        return record

    async def delete(self, tenant: str, name: str) -> None:
        async with self.locks.hold(tenant, name):
            # The registry first: once the state is gone, any request would `recover` the
            # model from a definition still in the registry and bring it back. The state's
            # tombstone then refuses any install of this incarnation (a recover that read the
            # definition before it was deleted).
            definition = await self.registry.get_definition(tenant, name)
            if definition is not None:
                await self.registry.delete_model(tenant, name)
            incarnation = int((definition or {}).get("incarnation", 0))
            in_state = await self.models.delete(tenant, name, incarnation=incarnation)
            if not (in_state or definition is not None):
                raise not_found("model", name)
            if self.challengers is not None and await self.challengers.active(tenant, name):
                await self.challengers.stop(tenant, name)
            self._forget(tenant, name)
            if self.degraded is not None:
                self.degraded.forget(tenant, name)
        await self.events.publish(
            tenant, "model.deleted", {"name": name}, subject=name, source="/online-ml/train"
        )

    async def record(self, tenant: str, name: str) -> dict[str, Any]:
        raw = await self.state.get_record(tenant, name)
        if raw is None and await self.recover(tenant, name):
            raw = await self.state.get_record(tenant, name)
        if raw is None:
            raise not_found("model", name)
        return json.loads(raw)

    async def records(self, tenant: str) -> list[dict[str, Any]]:
        names = set(await self.registry.list_models(tenant))
        hot = {r["name"]: r for r in await self.models.records(tenant)}
        shown = []
        for name in sorted(names | set(hot)):
            record = hot.get(name) or await self.registry.get_definition(tenant, name)
            if record is not None:
                shown.append(record)
        return shown

    async def recover(self, tenant: str, name: str) -> bool:
        """Rebuild a model the state store does not hold (memory:// restart, a store that
        came back empty) from the registry's newest version; True if it now exists."""
        if not NAME_PATTERN.match(name):
            return False  # not a registry model (a challenger's shadow): nothing to recover
        definition = await self.registry.get_definition(tenant, name)
        if definition is None:
            return False
        incarnation = int(definition.get("incarnation", 0))
        gen, deleted = await self.state.incarnation(tenant, name)
        if gen > incarnation or (gen == incarnation and deleted):
            return False  # deleted (the registry is a step behind) or recreated since
        pointers = (await self.registry.read_aliases(tenant, name)).doc
        version = int(pointers.get("live") or pointers.get("active") or 1)
        try:
            blob = await self.registry.load_artifact(tenant, name, version)
        except VersionNotFound:
            return False  # the registry is being deleted under us
        base_seq = int(pointers.get("live_seq", 0))
        known_seq = await self.loss.detect(tenant, name, incarnation=incarnation)
        seq = max(base_seq, known_seq or 0)
        record = {
            **definition,
            "version": int(pointers.get("active") or version),
            "uid": uuid.uuid4().hex,
        }
        report = None if known_seq is None else loss_report(known_seq, base_seq)
        if report is not None:
            record["state_lost"] = report
        if not await self.models.install(tenant, record, blob, incarnation=incarnation, seq=seq):
            # another request recovered it first (and reported), or a delete won: look again
            return await self.state.get_record(tenant, name) is not None
        await self.loss.remember(tenant, name, incarnation=incarnation, seq=seq)
        if report is not None:
            log_loss(tenant, name, report, version, seq)
            await self.events.publish(
                tenant,
                "state.lost",
                {"name": name, **report, "recovered_version": version, "seq": seq},
                subject=name,
                source="/online-ml/train",
            )
        return True

    async def _compacted(self, tenant: str, name: str, incarnation: int, seq: int) -> None:
        """A snapshot at `seq` was written: the registry learns how far the store got."""
        await self.loss.remember(tenant, name, incarnation=incarnation, seq=seq)

    # ----- versions ----------------------------------------------------------------------

    async def create_version(self, tenant: str, name: str, description: str = "") -> dict[str, Any]:
        """Snapshot the live online state as a new immutable version."""
        async with self.locks.hold(tenant, name):
            record, seq, blob = await self.models.snapshot(tenant, name)
            meta = self._meta(
                record,
                seq=seq,
                parent=record.get("version"),
                source="online",
                description=description,
            )
            stored = await self._store_version(tenant, name, blob, meta)

            def move_live(doc: dict[str, Any]) -> None:
                if doc.get("active") == record.get("version"):
                    doc.update(live=stored["version"], live_seq=seq)

            await self._update_pointers(tenant, name, move_live)
            await self.loss.remember(
                tenant, name, incarnation=int(record.get("incarnation", 0)), seq=seq
            )
        await self.events.publish(
            tenant, "model.version_created", stored, subject=name, source="/online-ml/activate"
        )
        return stored

    async def add_trained_version(
        self, tenant: str, name: str, blob: bytes, meta: dict[str, Any]
    ) -> dict[str, Any]:
        """Register a batch-trained artifact as a new version (not activated)."""
        async with self.locks.hold(tenant, name):
            record = await self.record(tenant, name)
            base = self._meta(record, seq=0, parent=None, source="batch")
            return await self._store_version(tenant, name, blob, {**base, **meta})

    async def versions(self, tenant: str, name: str) -> dict[str, Any]:
        await self.record(tenant, name)
        pointers = (await self.registry.read_aliases(tenant, name)).doc
        return {
            "versions": await self.registry.list_versions(tenant, name),
            "active": pointers.get("active"),
            "aliases": pointers.get("aliases", {}),
        }

    async def activate(self, tenant: str, name: str, version: int) -> dict[str, Any]:
        """Restart the online model from a version's artifact, on every instance."""
        async with self.locks.hold(tenant, name):
            record = await self.record(tenant, name)
            blob = await self.artifact(tenant, name, version)
            previous = record.get("version")
            at = await self.models.seq_of(tenant, name)
            # the registry first: it is the truth a restarted process resumes from
            await self._update_pointers(
                tenant, name, lambda doc: doc.update(active=version, live=version, live_seq=at)
            )
            record = {**record, "version": version, "uid": uuid.uuid4().hex}
            seq = await self.models.replace(tenant, record, blob)
            if seq is None:
                # the store lost the model since record(): never install it blindly (a
                # deleted model would come back); recover it, then restart it
                if not await self.recover(tenant, name):
                    raise not_found("model", name)
                seq = await self.models.replace(tenant, record, blob)
                if seq is None:
                    raise not_found("model", name)
            await self.loss.remember(
                tenant, name, incarnation=int(record.get("incarnation", 0)), seq=seq
            )
        activated = {"name": name, "version": version, "previous": previous, "seq": seq}
        if self.degraded is not None:
            self.degraded.forget(tenant, name)  # a new incarnation (uid)
        await self.events.publish(
            tenant, "model.activated", activated, subject=name, source="/online-ml/activate"
        )
        return activated

    async def set_alias(self, tenant: str, name: str, alias: str, version: int) -> dict[str, Any]:
        check_name(alias, "alias")
        if alias in RESERVED_ALIASES:
            raise unprocessable(f"'{alias}' is reserved; use POST .../activate", "reserved_alias")
        async with self.locks.hold(tenant, name):
            await self.record(tenant, name)
            if await self.registry.get_version(tenant, name, version) is None:
                raise not_found("version", str(version))
            doc = await self._update_pointers(
                tenant, name, lambda d: d.setdefault("aliases", {}).__setitem__(alias, version)
            )
            if alias == "challenger" and self.challengers is not None:
                definition = await self.record(tenant, name)
                blob = await self.artifact(tenant, name, version)
                await self.challengers.start(tenant, name, version, definition, blob)
        return {"name": name, "aliases": doc.get("aliases", {})}

    async def delete_alias(self, tenant: str, name: str, alias: str) -> dict[str, Any]:
        check_name(alias, "alias")
        async with self.locks.hold(tenant, name):
            current = (await self.registry.read_aliases(tenant, name)).doc.get("aliases", {})
            if alias not in current:
                raise not_found("alias", alias)
            doc = await self._update_pointers(
                tenant, name, lambda d: d.get("aliases", {}).pop(alias, None)
            )
            if alias == "challenger" and self.challengers is not None:
                await self.challengers.stop(tenant, name)
        return {"name": name, "aliases": doc.get("aliases", {})}

    async def promote(self, tenant: str, name: str, blob: bytes, meta: dict[str, Any]) -> int:
        """A challenger's live state becomes a version, is activated, and its alias goes
        (which stops the shadow); the version number. Passed to `Challengers` as a callable."""
        version = (await self.add_trained_version(tenant, name, blob, meta))["version"]
        await self.activate(tenant, name, version)
        await self.delete_alias(tenant, name, "challenger")
        return int(version)

    async def compare(self, tenant: str, name: str) -> dict[str, Any]:
        """Champion vs challenger on the same prequential samples (GET .../compare)."""
        if self.challengers is None:
            raise not_found("challenger", name)
        record = await self.record(tenant, name)
        aliases = (await self.versions(tenant, name))["aliases"]
        return await self.challengers.compare(
            tenant, name, record.get("version"), aliases.get("challenger")
        )

    async def resolve(self, tenant: str, name: str, version: str | None, alias: str | None) -> int:
        if version is not None:
            return parse_version(version)
        pointers = (await self.registry.read_aliases(tenant, name)).doc
        target = (
            pointers.get(alias)
            if alias in RESERVED_ALIASES
            else pointers.get("aliases", {}).get(alias)
        )
        if target is None:
            raise not_found("alias", str(alias))
        return int(target)

    async def predict_version(self, tenant: str, name: str, version: int, x: Any) -> dict[str, Any]:
        """Predict with a registered version exactly as it was frozen (it never learns)."""
        model, blueprint = await self._frozen_model(tenant, name, version)
        x = learning.check_x(blueprint, x)
        try:
            prediction, proba = learning.predict(model, blueprint, x)
        except learning.PREDICT_ERRORS as exc:
            raise unprocessable(
                f"the model cannot predict this x: {exc}", "prediction_failed"
            ) from None
        answer = answer_of(blueprint, prediction, proba)
        return {**answer, "model_version": version, "seq": None}

    async def predict_version_batch(
        self, tenant: str, name: str, version: int, instances: list[Any]
    ) -> dict[str, Any]:
        """`predict_version` for each instance, in order: one result or one error each, in
        the shape of `OnlineModels.predict_batch`; each equals `predict_version` exactly."""
        model, blueprint = await self._frozen_model(tenant, name, version)
        results: list[dict[str, Any]] = []
        for x in instances:
            try:
                checked = learning.check_x(blueprint, x)
            except ApiError as exc:
                results.append({"error": {"code": exc.code, "message": exc.message}})
                continue
            [answer] = learning.predict_batch(model, blueprint, [checked])
            if isinstance(answer, Exception):
                message = f"the model cannot predict this x: {answer}"
                results.append({"error": {"code": "prediction_failed", "message": message}})
            else:
                results.append(answer_of(blueprint, *answer))
        return {"results": results, "model_version": version, "seq": None}

    async def describe_version(self, tenant: str, name: str, version: int) -> dict[str, Any]:
        """A registered version as `OnlineModels.describe` tells the live model: the
        features it had learned when it was frozen."""
        model, blueprint = await self._frozen_model(tenant, name, version)
        return describe_model(model, blueprint, version, None)

    async def version_numbers(self, tenant: str, name: str) -> list[int]:
        """The model's registered versions, ascending."""
        return [int(meta["version"]) for meta in (await self.versions(tenant, name))["versions"]]

    async def _frozen_model(self, tenant: str, name: str, version: int) -> tuple[Any, Any]:
        """The version's estimator and blueprint, unpickled once per process (an LRU)."""
        # One state read per call, as a warm predict makes: a model deleted (or deleted and
        # recreated under the same name) through another instance is never served from here.
        record = await self.record(tenant, name)
        key = (tenant, name, record.get("created_at"), version)
        if key not in self._frozen:
            blob = await self.artifact(tenant, name, version)
            model = await run_in(self.models.cpu, pickle.loads, blob)
            self._frozen[key] = (model, blueprint_of(record))
            while len(self._frozen) > FROZEN_CACHE_SIZE:
                self._frozen.popitem(last=False)
        self._frozen.move_to_end(key)
        return self._frozen[key]

    def reload(self) -> int:
        """Drop every in-process cache (admin reload); state and registry are untouched."""
        dropped = self.models.evict_all() + len(self._frozen)
        self._frozen.clear()
        return dropped

    # ----- internals ---------------------------------------------------------------------

    def _forget(self, tenant: str, name: str) -> None:
        for key in [k for k in self._frozen if k[:2] == (tenant, name)]:
            del self._frozen[key]

    @staticmethod
    def _meta(
        record: dict[str, Any], *, seq: int, parent: int | None, source: str, description: str = ""
    ) -> dict[str, Any]:
        steps = record["spec"]["steps"]
        return {
            "kind": steps[-1]["kind"],
            "params": steps[-1].get("params", {}),
            "spec": record["spec"],
            "task": record["task"],
            "seq": seq,
            "parent": parent,
            "source": source,
            "description": description,
            "metrics": {},
        }

    async def _store_version(
        self, tenant: str, name: str, blob: bytes, meta: dict[str, Any]
    ) -> dict[str, Any]:
        for _ in range(16):
            number = await self.registry.next_version(tenant, name)
            try:
                return await self.registry.create_version(tenant, name, number, blob, meta)
            except VersionExists:
                continue  # another writer took that number: take the next
        raise conflict("could not allocate a version number; retry", "registry_conflict")

    async def artifact(self, tenant: str, name: str, version: int) -> bytes:
        try:
            return await self.registry.load_artifact(tenant, name, version)
        except VersionNotFound:
            raise not_found("version", str(version)) from None

    async def _update_pointers(self, tenant: str, name: str, change: Any) -> dict[str, Any]:
        """Read-modify-write aliases.json with compare-and-set, retrying on a lost race."""
        for _ in range(32):
            current = await self.registry.read_aliases(tenant, name)
            doc = json.loads(json.dumps(current.doc or {"aliases": {}}))
            change(doc)
            try:
                await self.registry.write_aliases(tenant, name, doc, current.generation)
                return doc
            except AliasConflict:
                await asyncio.sleep(0.01)
        raise conflict("the model's aliases kept changing; retry", "registry_conflict")
