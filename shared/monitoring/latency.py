"""Latency histograms kept as counts in the state store, so every instance adds to one.

Buckets are geometric (each 10% wider than the last) from 0.01 ms, so a percentile read
back is within ~5% of the true value, and only non-empty buckets take a hash field.
"""

from __future__ import annotations

import math
from typing import Any

BASE_MS = 0.01
FACTOR = 1.1
LAST = 200  # bucket 200 ends at ~1.9e6 ms: anything slower is counted there
PERCENTILES = (50, 95, 99)
_LOG_FACTOR = math.log(FACTOR)


def bucket_of(ms: float) -> int:
    if ms <= BASE_MS:
        return 0
    return min(LAST, math.ceil(math.log(ms / BASE_MS) / _LOG_FACTOR))


def upper_ms(bucket: int) -> float:
    return BASE_MS * FACTOR**bucket


class _Fields:
    """One route's field names, made once: a predict records one observation each."""

    __slots__ = ("buckets", "calls", "ms")

    def __init__(self, route: str) -> None:
        self.buckets = [f"lat:{route}:{bucket}" for bucket in range(LAST + 1)]
        self.calls = f"calls:{route}"
        self.ms = f"ms:{route}"


_fields: dict[str, _Fields] = {}


def record(counts: dict[str, float], route: str, ms: float) -> None:
    """Add one observation to a pending increment map (flushed by the monitor)."""
    fields = _fields.get(route)
    if fields is None:  # routes are the monitor's few names, never a client's
        fields = _fields[route] = _Fields(route)
    field = fields.buckets[bucket_of(ms)]
    counts[field] = counts.get(field, 0.0) + 1
    counts[fields.calls] = counts.get(fields.calls, 0.0) + 1
    counts[fields.ms] = counts.get(fields.ms, 0.0) + ms


def summarize(fields: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Per route: count, mean and p50/p95/p99 (ms) from the stored histogram fields."""
    buckets: dict[str, dict[int, float]] = {}
    for name, value in fields.items():
        if name.startswith("lat:"):
            _, route, index = name.rsplit(":", 2)
            buckets.setdefault(route, {})[int(index)] = value
    report: dict[str, dict[str, Any]] = {}
    for route, counts in sorted(buckets.items()):
        total = sum(counts.values())
        entry: dict[str, Any] = {
            "count": int(total),
            "mean_ms": fields.get(f"ms:{route}", 0.0) / total if total else None,
        }
        for p in PERCENTILES:
            entry[f"p{p}_ms"] = _percentile(counts, total, p / 100)
        report[route] = entry
    return report


def _percentile(counts: dict[int, float], total: float, q: float) -> float | None:
    """Interpolated geometrically inside the bucket the q-th observation falls in."""
    if not total:
        return None
    rank = q * total
    seen = 0.0
    for index in sorted(counts):
        count = counts[index]
        if seen + count >= rank:
            low = upper_ms(index - 1) if index else 0.0
            high = upper_ms(index)
            share = (rank - seen) / count
            return low + (high - low) * share if index == 0 else low * (high / low) ** share
        seen += count
    return upper_ms(max(counts))
