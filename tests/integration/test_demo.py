"""`make demo` end to end (the quick model set): the table prints and the PNG is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.servers import ROOT


def test_demo_replays_airline_passengers_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "demo.png"
    done = subprocess.run(
        [sys.executable, "-m", "scripts.demo", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    table = done.stdout
    for name in ("linear", "knn", "snarimax"):
        line = next(row for row in table.splitlines() if row.startswith(name))
        mae, rmse, n = line.split()[1:]
        assert 0 < float(mae) <= float(rmse) and int(n) >= 131
    assert out.stat().st_size > 20_000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
