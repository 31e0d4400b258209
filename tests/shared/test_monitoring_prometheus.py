"""/metrics parses, serves every monitoring series, merges processes; the Grafana dashboard
reads only series that exist."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shared.monitoring.prometheus import observe_request

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "infra" / "grafana" / "online-ml.json"
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}
OURS = {
    "ml_http_requests_total",
    "ml_http_request_duration_seconds_bucket",
    "ml_predictions_total",
    "ml_learned_samples_total",
    "ml_drift_detected",
    "ml_state_store_errors_total",
    "ml_events_outbox_backlog",
}


def series_names(text: str) -> set[str]:
    """Every sample name the exposition can carry, from each family's type."""
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def dashboard_series() -> set[str]:
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in doc["templating"]["list"] if "definition" in v]
    return {name for expr in exprs for name in re.findall(r"\bml_[a-z_]+\b", expr)}


async def test_metrics_parse_and_dashboard_reads_only_existing_series(
    client: httpx.AsyncClient,
) -> None:
    spec = {"name": "m", "steps": [{"kind": "linear_regression"}]}
    assert (await client.post("/api/v1/models", json=spec)).status_code == 201
    answer = await client.post("/api/v1/models/m/predict_learn", json={"x": {"a": 1.0}, "y": 2})
    assert answer.status_code == 200
    assert (await client.get("/api/v1/models/m/metrics")).status_code == 200  # sets the flag
    observe_request("/api/v1/models/{model}/predict", "POST", 200, 0.001)
    response = await client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    names = series_names(text)
    assert names >= OURS
    assert 'ml_predictions_total{model="m",route="predict_learn",tenant="acme"}' in text
    assert 'ml_drift_detected{model="m",tenant="acme"} 0.0' in text
    used = dashboard_series()
    assert used == OURS  # the dashboard is built on exactly these
    assert used <= names, f"the dashboard reads series /metrics lacks: {used - names}"


WRITER = """
from shared.monitoring.prometheus import PREDICTIONS, DRIFT, observe_request
PREDICTIONS.labels("acme", "m", "predict").inc(3)
DRIFT.labels("acme", "m").set(1)
observe_request("/api/v1/models/{model}/predict", "POST", 200, 0.002)
"""
READER = """
import sys
from shared.monitoring.prometheus import exposition
body, content_type = exposition()
sys.stdout.write(body.decode())
"""


def test_multiprocess_exposition_merges_every_process(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", WRITER], env=env, check=True, timeout=60)
    done = subprocess.run(
        [sys.executable, "-c", READER], env=env, check=True, timeout=60, capture_output=True
    )
    families = {f.name: f for f in text_string_to_metric_families(done.stdout.decode())}
    [predicted] = families["ml_predictions"].samples
    assert predicted.value == 6.0  # two processes, three each
    assert [s.value for s in families["ml_drift_detected"].samples] == [1.0]
    count = [
        s for s in families["ml_http_request_duration_seconds"].samples if s.name.endswith("_count")
    ]
    assert [s.value for s in count] == [2.0]
