"""ML-engine releases: one `POST /admin/train` is one seed version `vN`, made of one core
training job per symbol, each adding a version to that symbol's model `market-<SYMBOL>`.

A release document `<tenant>/_engine/releases/v<N>.json` (beside the registry, created
exclusively, so a number is never handed out twice) records the parameters and, per symbol,
the data set, the job and, once the job has ended, the core version it made. The document is
completed by whoever reads it after its jobs end (they may run in another instance or as a
Cloud Run Job), so no instance has to stay alive for it. Activation, the active version and
the models themselves are the core's (lifecycle, registry aliases).
"""

from __future__ import annotations

import asyncio
import json
import statistics
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from compat.engine.features import (
    MODEL_STEPS,
    TARGET,
    feature_names,
    model_of,
    supervised_csv,
)
from compat.engine.market_data import check_symbol, market_of
from compat.engine.schemas import EngineTrainIn
from compat.settings import compat_settings
from shared.datasets import Datasets
from shared.errors import ApiError, conflict, not_found
from shared.executors import run_in
from shared.schemas import ModelSpec, TrainRequest

if TYPE_CHECKING:
    from shared.runtime import Runtime

FOLDER = "_engine/releases"
FINAL = ("succeeded", "failed")
MAX_ALLOCATION_ATTEMPTS = 16


def label(number: int) -> str:
    return f"v{number}"


def parse_label(raw: str) -> int:
    digits = raw[1:] if raw[:1] in ("v", "V") else raw
    if not digits.isascii() or not digits.isdigit() or int(digits) < 1:
        raise ApiError(400, "invalid_version", "a version is v1, v2, ... (or 1, 2, ...)")
    return int(digits)


def _key(number: int) -> str:
    return f"{FOLDER}/{label(number)}.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def status_of(release: dict[str, Any]) -> str:
    states = [s["status"] for s in release["symbols"].values()]
    if not states or any(s not in FINAL for s in states):
        return "running"
    if all(s == "succeeded" for s in states):
        return "succeeded"
    return "failed" if all(s == "failed" for s in states) else "partial"


def _mean_metrics(release: dict[str, Any]) -> dict[str, float | None]:
    """Each held-out metric averaged over the symbols that report it."""
    found: dict[str, list[float]] = {}
    for entry in release["symbols"].values():
        for name, value in (entry.get("metrics") or {}).items():
            if isinstance(value, int | float):
                found.setdefault(name, []).append(float(value))
    return {name: statistics.fmean(values) for name, values in sorted(found.items())}


class Releases:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.registry = runtime.registry
        self.market = market_of(runtime)

    # ----- training ----------------------------------------------------------------------

    async def train(self, tenant: str, body: EngineTrainIn) -> dict[str, Any]:
        settings, defaults = self.runtime.settings, compat_settings()
        symbols = body.symbols or [s for s in defaults.train_symbols.split(",") if s.strip()]
        symbols = list(dict.fromkeys(check_symbol(s) for s in symbols))
        params = {
            "symbols": symbols,
            "lookback": body.lookback or defaults.train_lookback,
            "test_size": defaults.train_test_size if body.test_size is None else body.test_size,
            "random_state": (
                defaults.train_random_state if body.random_state is None else body.random_state
            ),
            "cv_folds": body.cv_folds or defaults.train_cv_folds,
            "n_lags": settings.n_lags,
            "activate": body.activate,
            "market_data": self.market.source,
        }
        latest = await self.latest(tenant)
        if latest is not None and latest["status"] == "running":
            raise conflict(
                f"training {latest['version']} is still running; see GET /admin/train/status",
                "training_in_progress",
            )
        # Fetch every symbol first: an unknown symbol or a failing upstream creates nothing.
        returns = await asyncio.gather(
            *(self.market.returns(s, params["lookback"]) for s in symbols)
        )
        release = await self._allocate(tenant, params)
        number = release["number"]
        for series in returns:
            entry = release["symbols"][series.symbol]
            try:
                entry.update(await self._submit(tenant, number, series, params))
            except ApiError as exc:  # one symbol failing fails only its own entry
                entry.update(status="failed", error=exc.message)
        await self._save(tenant, release)
        return self._shown(release)

    async def _submit(
        self, tenant: str, number: int, returns: Any, params: dict[str, Any]
    ) -> dict[str, Any]:
        model = model_of(returns.symbol)
        await self._ensure_model(tenant, model)
        csv = await run_in(self.runtime.executors.cpu, supervised_csv, returns, params["n_lags"])
        dataset = await Datasets(self.runtime.data, self.runtime.executors.io).upload(
            tenant,
            csv,
            "csv",
            f"{model}-{label(number)}",
            f"ML engine {label(number)}: {returns.symbol} lags → next return",
        )
        request = TrainRequest(
            uri=dataset["uri"],
            target=TARGET,
            features=feature_names(params["n_lags"]),
            test_size=params["test_size"],
            shuffle=False,  # time-ordered: the held-out part is the most recent
            seed=params["random_state"],
            activate=params["activate"],
        )
        job = await self.runtime.jobs.submit(tenant, model, request)
        return {"dataset_id": dataset["dataset_id"], "job_id": job["id"], "status": job["status"]}

    async def _ensure_model(self, tenant: str, model: str) -> None:
        spec = ModelSpec.model_validate(
            {
                "name": model,
                "task": "regression",
                "steps": MODEL_STEPS,
                "description": "ML engine: one model per market symbol",
            }
        )
        try:
            await self.runtime.lifecycle.create(tenant, spec)
        except ApiError as exc:
            if exc.code != "model_exists":
                raise

    async def _allocate(self, tenant: str, params: dict[str, Any]) -> dict[str, Any]:
        for _ in range(MAX_ALLOCATION_ATTEMPTS):
            number = max(await self._numbers(tenant), default=0) + 1
            release = {
                "number": number,
                "version": label(number),
                "created_at": _now(),
                "params": params,
                "symbols": {
                    s: {"model": model_of(s), "status": "queued", "model_version": None}
                    for s in params["symbols"]
                },
            }
            data = json.dumps(release).encode()
            if await self.registry.put_blob(tenant, _key(number), data, exclusive=True):
                return release
        raise ApiError(
            503, "registry_contention", "could not allocate a version; retry", {"Retry-After": "1"}
        )

    # ----- reading -----------------------------------------------------------------------

    async def list(self, tenant: str) -> list[dict[str, Any]]:
        numbers = await self._numbers(tenant)
        loaded = await asyncio.gather(*(self._load(tenant, n) for n in numbers))
        return [self._shown(r) for r in loaded if r is not None]

    async def get(self, tenant: str, raw_label: str) -> dict[str, Any]:
        number = parse_label(raw_label)
        release = await self._load(tenant, number)
        if release is None:
            raise not_found("version", label(number))
        return self._shown(release)

    async def latest(self, tenant: str) -> dict[str, Any] | None:
        numbers = await self._numbers(tenant)
        release = await self._load(tenant, max(numbers)) if numbers else None
        return self._shown(release) if release is not None else None

    async def active_label(self, tenant: str, releases: list[dict[str, Any]]) -> str | None:
        """The newest release every one of whose trained symbols serves its version now."""
        models = {e["model"] for r in releases for e in r["symbols"].values()}
        actives = dict(
            zip(
                models,
                await asyncio.gather(*(self._active(tenant, m) for m in models)),
                strict=True,
            )
        )
        for release in sorted(releases, key=lambda r: r["number"], reverse=True):
            trained = [e for e in release["symbols"].values() if e.get("model_version")]
            if trained and all(actives[e["model"]] == e["model_version"] for e in trained):
                return release["version"]
        return None

    async def _active(self, tenant: str, model: str) -> int | None:
        active = (await self.registry.read_aliases(tenant, model)).doc.get("active")
        return int(active) if active is not None else None

    # ----- activation --------------------------------------------------------------------

    async def activate(self, tenant: str, raw_label: str) -> dict[str, Any]:
        release = await self.get(tenant, raw_label)
        if release["status"] == "running":
            raise conflict(f"{release['version']} is still training", "training_in_progress")
        trained = {s: e for s, e in release["symbols"].items() if e.get("model_version")}
        if not trained:
            raise conflict(f"{release['version']} trained no model", "nothing_to_activate")
        previous = await self.active_label(tenant, await self.list(tenant))
        lifecycle = self.runtime.lifecycle
        await asyncio.gather(
            *(lifecycle.activate(tenant, e["model"], e["model_version"]) for e in trained.values())
        )
        return {
            "active_version": release["version"],
            "previous_version": previous,
            "symbols": {s: e["model_version"] for s, e in trained.items()},
        }

    # ----- storage -----------------------------------------------------------------------

    async def _numbers(self, tenant: str) -> list[int]:
        keys = await self.registry.list_blobs(tenant, f"{FOLDER}/")
        names = (k.rsplit("/", 1)[-1] for k in keys)
        return sorted(int(n[1:-5]) for n in names if n.startswith("v") and n[1:-5].isdigit())

    async def _load(self, tenant: str, number: int) -> dict[str, Any] | None:
        raw = await self.registry.get_blob(tenant, _key(number))
        if raw is None:
            return None
        release = json.loads(raw)
        if await self._complete(tenant, release):
            await self._save(tenant, release)
        return release

    async def _complete(self, tenant: str, release: dict[str, Any]) -> bool:
        """Copy finished jobs' outcomes into the release; True if anything changed."""
        changed = False
        for entry in release["symbols"].values():
            if entry["status"] in FINAL or "job_id" not in entry:
                continue
            try:
                job = await self.runtime.jobs.get(tenant, entry["job_id"])
            except ApiError:  # the job record expired before anyone read its outcome
                entry.update(status="failed", error="the training job's record expired")
                changed = True
                continue
            if job["status"] != entry["status"] or job["status"] in FINAL:
                entry.update(
                    status=job["status"],
                    progress=job.get("progress"),
                    model_version=job.get("version"),
                    metrics=job.get("metrics"),
                    error=job.get("error"),
                )
                changed = changed or job["status"] in FINAL
        return changed

    async def _save(self, tenant: str, release: dict[str, Any]) -> None:
        release = {k: v for k, v in release.items() if k not in ("status", "metrics", "active")}
        await self.registry.put_blob(tenant, _key(release["number"]), json.dumps(release).encode())

    @staticmethod
    def _shown(release: dict[str, Any]) -> dict[str, Any]:
        return {**release, "status": status_of(release), "metrics": _mean_metrics(release)}
