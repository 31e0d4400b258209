"""`make demo`: replay AirlinePassengers through `ingest` over HTTP into several online
models, print each model's prequential MAE/RMSE and plot actual vs predicted.

It starts the embedded default (memory:// state, a file registry in a temp dir) on a free
port unless --url points at a running gateway.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from river import datasets
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
TENANT = {"X-Tenant-ID": "demo"}
SCALED = [{"kind": "standard_scaler"}]
MODELS: dict[str, dict[str, Any]] = {
    "linear": {"steps": [*SCALED, {"kind": "linear_regression", "params": {"intercept_lr": 0.1}}]},
    "knn": {"steps": [*SCALED, {"kind": "knn_regressor", "params": {"n_neighbors": 5}}]},
    "hoeffding_tree": {"steps": [*SCALED, {"kind": "hoeffding_tree_regressor"}]},
    "amf": {"steps": [*SCALED, {"kind": "amf_regressor", "params": {"n_estimators": 10}}]},
    "bagging": {
        "steps": [
            *SCALED,
            {
                "kind": "bagging_regressor",
                "params": {"model": {"kind": "linear_regression"}, "n_models": 5},
            },
        ]
    },
    "snarimax": {"kind": "snarimax", "params": {"p": 12, "d": 1, "q": 12, "m": 12, "sd": 1}},
}
QUICK = ("linear", "knn", "snarimax")
N_LAGS = 12


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gateway(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ENV": "dev",
        "STATE_URL": "memory://",
        "MODEL_REGISTRY_URI": f"file://{data_dir / 'registry'}",
        "EVENTS_DIR": str(data_dir / "events"),
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "functions.gateway:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the gateway did not start")


def replay(url: str, names: list[str]) -> tuple[list[float], dict[str, list[float | None]]]:
    ys = [float(y) for _, y in datasets.AirlinePassengers()]
    predictions: dict[str, list[float | None]] = {name: [] for name in names}
    with httpx.Client(base_url=url, headers=TENANT, timeout=60) as http:
        for name in names:
            http.delete(f"/api/v1/models/{name}")
            created = http.post("/api/v1/models", json={"name": name, **MODELS[name]})
            if created.status_code != 201:
                raise SystemExit(f"cannot create {name}: {created.text}")
        http.put(
            "/api/v1/series/airline/models", json={"models": names, "n_lags": N_LAGS}
        ).raise_for_status()
        http.post("/api/v1/series/airline/reset").raise_for_status()
        for y in tqdm(ys, desc="AirlinePassengers → ingest", unit="obs"):
            answer = http.post("/api/v1/series/airline/observations", json={"value": y})
            answer.raise_for_status()
            [entry] = answer.json()["observations"]
            for name in names:
                got = entry["predictions"].get(name) or {}
                predictions[name].append(got.get("prediction"))
    return ys, predictions


def scores(ys: list[float], predicted: list[float | None]) -> tuple[float, float, int]:
    """Prequential MAE and RMSE over the points every model predicted (after the lag window)."""
    pairs = [(y, p) for y, p in list(zip(ys, predicted, strict=True))[N_LAGS:] if p is not None]
    mae = sum(abs(y - p) for y, p in pairs) / len(pairs)
    rmse = math.sqrt(sum((y - p) ** 2 for y, p in pairs) / len(pairs))
    return mae, rmse, len(pairs)


def plot(ys: list[float], predictions: dict[str, list[float | None]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(12, 8), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    months = list(range(len(ys)))
    top.plot(months, ys, color="black", linewidth=2.2, label="actual")
    for name, predicted in predictions.items():
        top.plot(months, [math.nan if p is None else p for p in predicted], linewidth=1, label=name)
        errors = [math.nan if p is None else abs(y - p) for y, p in zip(ys, predicted, strict=True)]
        rolling = [_mean(errors[max(0, i - 11) : i + 1]) for i in range(len(errors))]
        bottom.plot(months, rolling, linewidth=1, label=name)
    top.set_title("AirlinePassengers (1949-1960) through ingest: prequential predictions")
    top.set_ylabel("passengers (thousands)")
    top.legend(ncol=4, fontsize=8)
    bottom.set_title("rolling 12-month absolute error")
    bottom.set_xlabel("month since Jan 1949")
    bottom.set_ylabel("|error|")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _mean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a running gateway (default: start the embedded one)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "demo.png")
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)} (CI)")
    args = parser.parse_args()
    names = list(QUICK) if args.quick else list(MODELS)
    process = None
    with tempfile.TemporaryDirectory(prefix="ml-demo-") as data_dir:
        if args.url:
            url = args.url
        else:
            process, url = start_gateway(Path(data_dir))
        try:
            ys, predictions = replay(url, names)
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=10)
    print(f"\n{'model':<16}{'MAE':>10}{'RMSE':>10}{'n':>6}")
    for name in names:
        mae, rmse, n = scores(ys, predictions[name])
        print(f"{name:<16}{mae:>10.2f}{rmse:>10.2f}{n:>6}")
    plot(ys, predictions, args.out)
    print(f"\nplot: {args.out}")


if __name__ == "__main__":
    main()
