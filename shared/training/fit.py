"""Fit a model's fresh snapshot on rows in order and score the held-out part (pure, sync:
it runs in a fit worker process, a job thread or a Cloud Run Job, never on the event loop)."""

from __future__ import annotations

import math
import os
import pickle
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared import learning, model_pickle
from shared.catalog import Blueprint
from shared.errors import ApiError
from shared.training.data import DataError, Row


@dataclass(frozen=True)
class FitResult:
    blob: bytes
    metrics: dict[str, float | None]
    rows_train: int
    rows_test: int


def split(
    rows: list[Row], test_size: float, shuffle: bool, seed: int
) -> tuple[list[Row], list[Row]]:
    """Time-ordered by default (the last test_size part is held out), or shuffled by seed."""
    ordered = list(rows)
    if shuffle:
        random.Random(seed).shuffle(ordered)
    cut = len(ordered) - round(len(ordered) * test_size)
    return ordered[:cut], ordered[cut:]


def _checked(blueprint: Blueprint, rows: list[Row], offset: int) -> list[Row]:
    checked = []
    for index, (x, y) in enumerate(rows):
        try:
            checked.append((learning.check_x(blueprint, x), learning.check_y(blueprint, y)))
        except ApiError as exc:
            raise DataError(f"row {offset + index}: {exc.message}") from None
    return checked


def _score(model: Any, blueprint: Blueprint, test: list[Row]) -> dict[str, float | None]:
    from river import metrics  # here: river.metrics loads scipy.stats; only a fit scores

    if not test or blueprint.task in learning.UNSUPERVISED:
        return {}  # a detector or clusterer has no held-out score to report
    if blueprint.task == "forecasting":
        forecast = learning.forecast_steps(model, len(test), None) or []
        mae, rmse = metrics.MAE(), metrics.RMSE()
        for (_, y), predicted in zip(test, forecast, strict=False):
            mae.update(y, predicted)
            rmse.update(y, predicted)
        return {"mae": mae.get(), "rmse": rmse.get()}
    if blueprint.task == "regression":
        scores = {"mae": metrics.MAE(), "rmse": metrics.RMSE(), "r2": metrics.R2()}
        for x, y in test:
            predicted = model.predict_one(x)
            for metric in scores.values():
                metric.update(y, predicted)
        return {name: _finite(metric.get()) for name, metric in scores.items()}
    binary = all(isinstance(y, bool) for _, y in test)
    accuracy, f1 = metrics.Accuracy(), (metrics.F1() if binary else metrics.MacroF1())
    log_loss = metrics.LogLoss() if binary else None
    for x, y in test:
        proba = model.predict_proba_one(x)
        predicted = max(proba, key=proba.get) if proba else None
        accuracy.update(y, predicted)
        f1.update(y, predicted)
        if log_loss is not None:
            log_loss.update(y, proba.get(True, 0.5))
    scored = {"accuracy": accuracy.get(), "f1": f1.get()}
    if log_loss is not None:
        scored["log_loss"] = log_loss.get()
    return {name: _finite(value) for name, value in scored.items()}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class FitOptions:
    """How a job splits its rows (TrainRequest's fields of the same names)."""

    test_size: float
    shuffle: bool
    seed: int


def fit(
    snapshot: bytes,
    blueprint: Blueprint,
    rows: list[Row],
    options: FitOptions,
    progress: Callable[[float], None] = lambda _: None,
) -> FitResult:
    if blueprint.task == "forecasting" and options.shuffle:
        raise DataError("a time series cannot be shuffled: set shuffle to false")
    if not rows:
        raise DataError("the data has no usable rows")
    train, test = split(rows, options.test_size, options.shuffle, options.seed)
    train, test = _checked(blueprint, train, 0), _checked(blueprint, test, len(train))
    if not train:
        raise DataError("nothing left to train on: lower test_size")
    model = pickle.loads(snapshot)
    step = max(1, len(train) // 100)
    for index, (x, y) in enumerate(train, start=1):
        learning.learn(model, blueprint, x, y)
        if index % step == 0:
            progress(index / len(train))
    progress(1.0)
    return FitResult(
        model_pickle.dumps(model),
        _score(model, blueprint, test),
        len(train),
        len(test),
    )


# a fit's progress as a worker process shares it: one float in a file the job reads
PROGRESS = struct.Struct("d")


class FitCrashed(Exception):
    """A fit failed in a worker process with an exception other than DataError or ApiError,
    sent back as its class name and message: any exception of River's may not unpickle on
    the other side (one that does not fails the whole pool: every queued fit with it)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(kind, message)
        self.kind = kind

    def __str__(self) -> str:
        return f"{self.args[0]}: {self.args[1]}"


def fit_in_worker(
    progress_path: str, snapshot: bytes, blueprint: Blueprint, rows: list[Row], options: FitOptions
) -> FitResult:
    """`fit` in a worker process, its progress written to `progress_path` (`read_progress`)."""
    with open(progress_path, "r+b", buffering=0) as shared:

        def report(value: float) -> None:
            os.pwrite(shared.fileno(), PROGRESS.pack(value), 0)

        try:
            return fit(snapshot, blueprint, rows, options, report)
        except (DataError, ApiError):
            raise  # both pickle with their fields; the job reports their message
        except Exception as exc:
            # `from exc`: the worker's traceback of it travels with the remote one
            raise FitCrashed(type(exc).__name__, str(exc)) from exc


def read_progress(fd: int) -> float:
    """What `fit_in_worker` last wrote to the file open as `fd` (0 before its first step)."""
    written = os.pread(fd, PROGRESS.size, 0)
    return PROGRESS.unpack(written)[0] if len(written) == PROGRESS.size else 0.0
