"""River called in-process on the same samples: the floor any served call is compared to.

Models are built from the same spec by the same catalog the functions use, so "same model
state" means the same estimator, the same defaults and the same learned samples.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.catalog import build_model

Sample = tuple[dict[str, float], float]


@dataclass
class Timing:
    calls: int
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float


def fresh_model(steps: list[dict[str, Any]]) -> Any:
    _, model = build_model({"steps": steps})
    return model


def trained_model(steps: list[dict[str, Any]], samples: list[Sample]) -> Any:
    model = fresh_model(steps)
    for x, y in samples:
        model.learn_one(x, y)
    return model


def time_calls(
    call: Callable[[dict[str, float], float], object], samples: list[Sample], duration: float
) -> Timing:
    """Call over the samples (cycling) for `duration` seconds, timing each call alone."""
    clock = time.perf_counter_ns
    latencies: list[int] = []
    deadline = clock() + int(duration * 1e9)
    for x, y in itertools.cycle(samples):
        started = clock()
        call(x, y)
        ended = clock()
        latencies.append(ended - started)
        if ended >= deadline:
            break
    latencies.sort()
    total = sum(latencies)
    count = len(latencies)
    return Timing(
        calls=count,
        calls_per_s=count / (total / 1e9),
        p50_ms=latencies[count // 2] / 1e6,
        p99_ms=latencies[min(count - 1, int(count * 0.99))] / 1e6,
        mean_ms=total / count / 1e6,
    )


def predict_timing(model: Any, samples: list[Sample], duration: float) -> Timing:
    """predict_one only: the model state stays exactly what was learned before."""
    return time_calls(lambda x, _y: model.predict_one(x), samples, duration)


def prequential_timing(model: Any, samples: list[Sample], duration: float) -> Timing:
    """predict_one then learn_one per sample: what one predict_learn call does in River."""

    def step(x: dict[str, float], y: float) -> None:
        model.predict_one(x)
        model.learn_one(x, y)

    return time_calls(step, samples, duration)
