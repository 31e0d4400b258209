"""The catalog imports a kind's River module when the kind is first used, not when the
catalog is imported (docs/architecture.md: the catalog). Checked in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
seen = {}
from shared import catalog
seen["import"] = "river.anomaly" in sys.modules or "scipy.stats" in sys.modules
catalog.build_model({"steps": [{"kind": "standard_scaler"}, {"kind": "linear_regression"}]})
seen["linear"] = "river.anomaly" in sys.modules or "sklearn.neural_network" in sys.modules
catalog.build_model({"steps": [{"kind": "half_space_trees", "params": {"n_trees": 3}}]})
seen["detector"] = "river.anomaly" in sys.modules
print(json.dumps(seen))
"""


def test_a_kind_s_module_is_imported_at_its_first_use() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"import": False, "linear": False, "detector": True}
