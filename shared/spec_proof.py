"""A spec is proven before it is created: built, then one synthetic sample learned and
predicted, off the event loop, within SPEC_PROOF_SECONDS and MAX_MODEL_BYTES.

A spec River accepts at construction but fails on at learn or predict time (an invalid
tokenizer regex, an unknown MLP activation) is a 422 with River's message, never a model that
answers 500 on every call or acknowledges learns it never makes.
"""

from __future__ import annotations

import asyncio
import pickle
import time
from concurrent.futures import Executor
from typing import Any

from shared import learning
from shared.catalog import Blueprint
from shared.errors import ApiError, unavailable, unprocessable
from shared.executors import run_in
from shared.online import OnlineModels
from shared.schemas import ModelSpec
from shared.settings import Settings, get_settings


async def prove(spec: ModelSpec, executor: Executor) -> tuple[dict[str, Any], bytes]:
    """The model's record and snapshot 0, once the spec has learned and predicted a sample,
    proven in `executor` (the CPU pool, shared/executors.py): the event loop keeps serving and
    a flood of proofs waits for a worker."""
    settings = get_settings()
    budget = settings.spec_proof_seconds
    loop = asyncio.get_running_loop()
    began = asyncio.Event()

    def work() -> tuple[dict[str, Any], bytes]:
        loop.call_soon_threadsafe(began.set)
        return proven(spec, settings)

    task = asyncio.ensure_future(run_in(executor, work))
    try:
        await asyncio.wait_for(began.wait(), budget)
    except TimeoutError:
        task.cancel()  # still queued: it never runs
        raise unavailable("every CPU worker is busy; retry", retry_after=2, code="busy") from None
    try:
        return await asyncio.wait_for(asyncio.shield(task), budget)
    except TimeoutError:
        # the worker finishes on its own (every parameter that scales work is bounded)
        task.add_done_callback(_consume)
        raise unprocessable(
            f"the spec did not build, learn and predict one sample within "
            f"SPEC_PROOF_SECONDS ({budget:g} s)",
            "spec_too_slow",
        ) from None


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" warning


def proven(spec: ModelSpec, settings: Settings) -> tuple[dict[str, Any], bytes]:
    """Build, size, learn two synthetic samples and predict one (synchronous)."""
    started = time.perf_counter()
    record, blob = OnlineModels.prepare(spec)
    _check_size(len(blob), settings)
    blueprint = Blueprint(**record["blueprint"])
    trial = pickle.loads(blob)  # snapshot 0 stays the fresh estimator
    try:
        for x, y in synthetic(blueprint, record["spec"]):
            learning.learn(trial, blueprint, x, y)
        # y: what a univariate detector scores (every other model predicts from x alone)
        learning.predict(trial, blueprint, *synthetic(blueprint, record["spec"])[0])
    except ApiError:
        raise
    except Exception as exc:
        raise unprocessable(
            f"the spec fails on a sample: {type(exc).__name__}: {exc}", "spec_failed"
        ) from None
    _check_size(len(pickle.dumps(trial, protocol=pickle.HIGHEST_PROTOCOL)), settings)
    if time.perf_counter() - started > settings.spec_proof_seconds:
        raise unprocessable(
            f"the spec did not build, learn and predict one sample within "
            f"SPEC_PROOF_SECONDS ({settings.spec_proof_seconds:g} s)",
            "spec_too_slow",
        )
    return record, blob


def _check_size(size: int, settings: Settings) -> None:
    if size > settings.max_model_bytes:
        raise unprocessable(
            f"the model pickles to {size} bytes; MAX_MODEL_BYTES is {settings.max_model_bytes}",
            "model_too_large",
        )


def synthetic(blueprint: Blueprint, spec: dict[str, Any]) -> list[tuple[Any, Any]]:
    """Two samples shaped as the model expects: text or features, and a fitting target."""
    if blueprint.task == "forecasting":
        return [(None, 1.0), (None, 2.0)]
    if blueprint.text_input:
        xs: list[Any] = ["online learning proves a spec", "a second short text sample"]
    else:
        # numbers only: a spec declares no features, and every kind takes numbers (string
        # features are checked per sample: a learn that raises is refused, learn_failed)
        named = _named_features(spec)  # features a step reads by name (agg's on / by)
        xs = [
            {"f0": 0.5, "f1": -1.25, **dict.fromkeys(named, 1.0)},
            {"f0": 1.5, "f1": 0.75, **dict.fromkeys(named, 2.0)},
        ]
    if blueprint.task == "regression" or blueprint.scores_target:
        ys: list[Any] = [1.0, 2.0]
    elif blueprint.task in learning.UNSUPERVISED:
        ys = [None, None]  # detectors and clusterers learn x alone
    elif blueprint.binary_only:
        ys = [True, False]
    else:
        params = spec["steps"][-1].get("params", {})
        # a sampler learns only the labels of its desired_dist
        classes = params.get("classes") or list(params.get("desired_dist") or {})
        ys = list(classes[:2]) if isinstance(classes, list) and len(classes) >= 2 else ["a", "b"]
    return list(zip(xs, ys, strict=True))


def _named_features(spec: dict[str, Any]) -> list[str]:
    """The feature names a spec's steps read by name: agg's `on`, agg / target_agg's `by`."""
    names: list[str] = []
    for step in spec["steps"]:
        params = step.get("params") or {}
        for value in (params.get("on"), params.get("by")):
            if isinstance(value, str):
                names.append(value)
            elif isinstance(value, list):
                names.extend(v for v in value if isinstance(v, str))
    return names
