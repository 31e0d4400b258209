"""Prometheus collectors of the platform, and the exposition `/metrics` serves.

Every series the Grafana dashboard (infra/grafana/online-ml.json) reads is defined here:

- ml_http_requests_total{route,method,status}, ml_http_request_duration_seconds{route,method}
  fed by `observe_request`, which the HTTP edge calls once per request;
- ml_predictions_total{tenant,model,route}, ml_learned_samples_total{tenant,model}
  fed by the monitor's hooks in OnlineModels;
- ml_anomalies_flagged_total{tenant,model}: answers with is_anomaly true (issue 17);
- ml_drift_detected{tenant,model}: 1 while a drift episode is open on the active version;
- ml_state_store_errors_total{error}: state-store calls that failed (Redis unreachable);
- ml_events_outbox_backlog: events waiting in the outbox for NATS;
- ml_audit_rows_dropped_total: audit rows lost because the state store was down.

Multi-process: prometheus_client keeps values in memory per process. With several worker
processes behind one port (gunicorn / `uvicorn --workers`), set PROMETHEUS_MULTIPROC_DIR to
an empty directory before the workers start: every process then writes its values to files
there and `exposition()` merges them (prometheus_client.multiprocess), so a scrape sees the
whole server, not one random worker. Gauges say how to merge (`multiprocess_mode`). Clear
the directory when the server restarts. (One process per container, as on Cloud Run, needs
nothing: Prometheus scrapes every instance.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.metrics_core import Metric

# Request latency buckets (seconds): a warm predict is ~0.2 ms, a cold AMF load ~0.6 s.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

HTTP_REQUESTS = Counter(
    "ml_http_requests_total",
    "HTTP requests by route template, method and status",
    ["route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "ml_http_request_duration_seconds",
    "HTTP request latency by route template and method",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
PREDICTIONS = Counter(
    "ml_predictions_total",
    "Predictions served per model and route (a batch counts each item)",
    ["tenant", "model", "route"],
)
LEARNED = Counter(
    "ml_learned_samples_total", "Samples appended to a model's learn log", ["tenant", "model"]
)
DRIFT = Gauge(
    "ml_drift_detected",
    "1 while a drift episode is open on the model's active version, else 0",
    ["tenant", "model"],
    multiprocess_mode="mostrecent",
)
STATE_ERRORS = Counter(
    "ml_state_store_errors_total", "State-store calls that failed, by error", ["error"]
)
SSE_STREAMS = Gauge(
    "ml_sse_streams_open",
    "Server-Sent Events streams open now (GET /api/v1/stream/events)",
    multiprocess_mode="livesum",
)
LIVE_DROPPED = Counter(
    "ml_live_events_dropped_total",
    "Live prediction/metrics events dropped because MAX_WRITES_IN_FLIGHT sends were pending",
)
OUTBOX_BACKLOG = Gauge(
    "ml_events_outbox_backlog",
    "Events waiting in the outbox to be relayed to NATS",
    multiprocess_mode="livemax",
)
ANOMALIES_FLAGGED = Counter(
    "ml_anomalies_flagged_total",
    "Scores a detector's filter flagged as anomalies (is_anomaly), per model",
    ["tenant", "model"],
)
AUDIT_DROPPED = Counter(
    "ml_audit_rows_dropped_total", "Prediction audit rows dropped (state store unreachable)"
)


# (route, method, status) → the two children: `labels()` takes a lock and builds a tuple on
# every call; the keys are route templates, methods and statuses, so they stay few.
_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one HTTP request; `route` is the route template (`/api/v1/models/{model}/...`),
    never the raw path, so the series stay few."""
    children = _request_children.get((route, method, status))
    if children is None:
        children = (
            HTTP_REQUESTS.labels(route, method, str(status)),
            HTTP_SECONDS.labels(route, method),
        )
        _request_children[route, method, status] = children
    children[0].inc()
    children[1].observe(seconds)


def count_state_error(error: str) -> None:
    STATE_ERRORS.labels(error).inc()


def exposition(tenant_labels: bool = True) -> tuple[bytes, str]:
    """The text `/metrics` answers, and its content type; merged over every process when
    PROMETHEUS_MULTIPROC_DIR is set; without tenant and model names when `tenant_labels` is
    false (METRICS_TENANT_LABELS)."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
    if not tenant_labels:
        return generate_latest(_Summed(registry, TENANT_LABELS)), CONTENT_TYPE_LATEST  # type: ignore[arg-type]
    return generate_latest(registry), CONTENT_TYPE_LATEST


# Labels that name a tenant or its model: METRICS_TENANT_LABELS=false sums them away.
TENANT_LABELS = frozenset({"tenant", "model"})


class _Summed:
    """A collector view of `source` without `dropped` labels: the samples that differ only
    in them are summed (a counter's `_created` keeps the earliest)."""

    def __init__(self, source: CollectorRegistry, dropped: frozenset[str]) -> None:
        self.source, self.dropped = source, dropped

    def collect(self) -> Iterator[Metric]:
        for family in self.source.collect():
            if not any(self.dropped & sample.labels.keys() for sample in family.samples):
                yield family
                continue
            merged: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
            for sample in family.samples:
                labels = {k: v for k, v in sample.labels.items() if k not in self.dropped}
                key = (sample.name, tuple(sorted(labels.items())))
                if sample.name.endswith("_created") and key in merged:
                    merged[key] = min(merged[key], sample.value)
                else:
                    merged[key] = merged.get(key, 0.0) + sample.value
            summed = Metric(family.name, family.documentation, family.type, family.unit)
            for (name, labels), value in merged.items():
                summed.add_sample(name, dict(labels), value)
            yield summed
