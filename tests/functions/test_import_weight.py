"""Importing a function group loads only what its routes need before their first request
(docs/architecture.md: the catalog). Each import runs in a fresh interpreter, so what this
test process already loaded cannot hide an eager import: the check is `sys.modules` there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# not train: it builds any spec, so it imports every kind's module at start (catalog.import_all)
GROUPS = ("predict", "batch", "ingest", "monitoring", "activate")
# Loaded on first use only: River's detectors (river.anomaly) and scipy.stats (river.proba,
# river.metrics, scikit-learn), scikit-learn, the table readers, GCS, plotting, and nats-py
# (NATS_URL is unset here).
NOT_AT_IMPORT = (
    "river.anomaly",
    "river.proba",
    "river.metrics",
    "scipy.stats",
    "sklearn",
    "pandas",
    "pyarrow",
    "google.cloud.storage",
    "matplotlib",
    "nats",
)
PROBE = (
    "import importlib, json, sys\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(json.dumps([m for m in sys.argv[2:] if m in sys.modules]))\n"
)


def loaded_after_import(module: str, watched: tuple[str, ...]) -> list[str]:
    """Which of `watched` are in sys.modules after importing `module` in a new interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "NATS_URL"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module, *watched],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    found: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("group", GROUPS)
def test_importing_a_function_loads_no_detector_scipy_or_optional_library(group: str) -> None:
    assert loaded_after_import(f"functions.{group}.main", NOT_AT_IMPORT) == []


def test_the_probe_sees_an_eager_import() -> None:
    # the same check on a module that does import River's detectors: it must report them
    assert loaded_after_import("river.anomaly", ("river.anomaly", "scipy.stats")) == [
        "river.anomaly",
        "scipy.stats",
    ]
