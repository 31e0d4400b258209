"""Cold start: process start to the first correct predict on an existing model, against the floor
of a bare import of the same River estimators plus the echo function's own cold start.

Both servers are started as deployed (`python -m shared.server` building FUNCTION_TARGET from
FUNCTION_SOURCE, so the predict process imports the predict function alone). The clock starts
just before the process is spawned and stops at the first answer that is right: for predict, a
200 whose prediction == River's in-process prediction on the same learned samples; for the
echo, a 200. Each figure is the median of RUNS runs.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.load import TENANT
from bench.servers import ROOT, Server

RUNS = 3
POLL_SECONDS = 0.005
# The estimators of StandardScaler | LinearRegression, imported with nothing of ours around them.
RIVER_IMPORT = (
    "import time\n"
    "started = time.perf_counter()\n"
    "from river import linear_model, preprocessing\n"
    "print(time.perf_counter() - started)\n"
)


@dataclass(frozen=True)
class ColdStart:
    predict_s: float
    river_import_s: float
    echo_s: float

    @property
    def ratio(self) -> float:
        return self.predict_s / (self.river_import_s + self.echo_s)


def deployed(name: str, source: str, env: dict[str, str], work: Path) -> Server:
    """A function served the way the image's CMD serves it, from FUNCTION_SOURCE."""

    def command(port: int) -> list[str]:
        return [
            *(sys.executable, "-m", "shared.server", "--host", "127.0.0.1"),
            *("--port", str(port), "--log-level", "warning"),
        ]

    function = {"FUNCTION_SOURCE": str(ROOT / source), "FUNCTION_TARGET": "app"}
    return Server(name, "shared.server:function_app", {**env, **function}, work, command=command)


def first_answer(server: Server, answered: Callable[[httpx.Client], bool]) -> float:
    """Seconds from spawning the server to the first request `answered` accepts."""
    started = time.perf_counter()
    server.start()
    try:
        with httpx.Client(base_url=server.url, headers={"X-Tenant-ID": TENANT}, timeout=10) as http:
            while time.perf_counter() - started < 60:
                try:
                    if answered(http):
                        return time.perf_counter() - started
                except httpx.TransportError:
                    pass
                if server.process is not None and server.process.poll() is not None:
                    raise RuntimeError(f"{server.name} exited; log:\n{server.tail()}")
                time.sleep(POLL_SECONDS)
        raise TimeoutError(f"{server.name}: no correct answer in 60 s; log:\n{server.tail()}")
    finally:
        server.stop()


def river_import_seconds() -> float:
    done = subprocess.run(
        [sys.executable, "-c", RIVER_IMPORT], capture_output=True, text=True, check=True
    )
    return float(done.stdout)


def measure(
    model: str, x: dict[str, float], expected: float, state: dict[str, str], work: Path
) -> ColdStart:
    """`model` exists in the state `state` points at and predicts `expected` for `x`."""
    path = f"/api/v1/models/{model}/predict"

    def correct(http: httpx.Client) -> bool:
        answer = http.post(path, json={"x": x})
        return answer.status_code == 200 and answer.json()["prediction"] == expected

    def echoed(http: httpx.Client) -> bool:
        return http.post("/", json={"x": x}).status_code == 200

    predict, river, echo = [], [], []
    for run in range(RUNS):
        server = deployed(f"cold-predict-{run}", "functions/predict/main.py", state, work)
        predict.append(first_answer(server, correct))
        river.append(river_import_seconds())
        echo.append(first_answer(deployed(f"cold-echo-{run}", "bench/echo.py", {}, work), echoed))
    return ColdStart(statistics.median(predict), statistics.median(river), statistics.median(echo))
