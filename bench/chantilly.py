"""chantilly 0.3.0 beside our functions: its own venv, gunicorn with 2 workers, the bench's Valkey.

The venv (.bench/chantilly-venv) is built once from bench/chantilly_shim/requirements.txt (PyPI at
install time) and reused while that file is unchanged. chantilly runs with the shim in
bench/chantilly_shim/chantilly_wsgi.py, keeps its state in Valkey database 1 (its `POST /api/init` flushes its
database, and ours is 0), and gets the same StandardScaler | LinearRegression, created and
taught the same samples through its own API, as our functions get through theirs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from bench.inprocess import Sample
from bench.servers import ROOT, Server

VENV = ROOT / ".bench" / "chantilly-venv"
PYTHON = VENV / "bin" / "python"
SHIM = Path(__file__).resolve().parent / "chantilly_shim"
REQUIREMENTS = SHIM / "requirements.txt"
WSGI = SHIM / "chantilly_wsgi.py"
WORKERS = 2
DATABASE = 1
MODEL = "linreg"


def ensure_venv() -> None:
    """Create and fill the venv unless the one there was built from the same requirements."""
    marker = VENV / ".installed"
    wanted = REQUIREMENTS.read_text()
    if marker.exists() and marker.read_text() == wanted:
        return
    VENV.parent.mkdir(parents=True, exist_ok=True)
    (VENV.parent / ".gitignore").write_text("*\n")  # .bench/ holds no source, never commit it
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    pip = [str(PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    marker.write_text(wanted)


def server(valkey_host: str, valkey_port: int, work: Path) -> Server:
    env = {
        "STORAGE_BACKEND": "redis",
        "REDIS_HOST": valkey_host,
        "REDIS_PORT": str(valkey_port),
        "REDIS_DB": str(DATABASE),
    }

    def command(port: int) -> list[str]:
        return [
            *(str(VENV / "bin" / "gunicorn"), "--workers", str(WORKERS)),
            *("--bind", f"127.0.0.1:{port}", "--log-level", "warning"),
            *("--pythonpath", str(SHIM), "chantilly_wsgi:serve()"),
        ]

    return Server("chantilly", "chantilly_wsgi:serve()", env, work, command=command)


def predict_body(x: dict[str, float]) -> dict[str, object]:
    return {"features": x, "model": MODEL}


def learn_body(x: dict[str, float], y: float) -> dict[str, object]:
    return {"features": x, "ground_truth": y, "model": MODEL}


def write_bodies(work: Path, samples: list[Sample]) -> dict[str, Path]:
    """chantilly's request bodies, one per line, carrying the same six features as ours."""
    files = {"predict": work / "chantilly-x.jsonl", "learn": work / "chantilly-xy.jsonl"}
    files["predict"].write_text("".join(json.dumps(predict_body(x)) + "\n" for x, _ in samples))
    files["learn"].write_text("".join(json.dumps(learn_body(x, y)) + "\n" for x, y in samples))
    return files


def create_and_learn(url: str, samples: list[Sample]) -> None:
    """Regression flavour, the model as dill bytes from chantilly's own River, then one
    `POST /api/learn` per sample (chantilly has no batch learn)."""
    model = subprocess.run([str(PYTHON), str(WSGI)], capture_output=True, check=True).stdout
    with httpx.Client(base_url=url, timeout=60) as http:
        steps = [
            http.post("/api/init", json={"flavor": "regression"}),
            http.post(f"/api/model/{MODEL}", content=model),
        ]
        steps += [http.post("/api/learn", json=learn_body(x, y)) for x, y in samples]
    failed = [r for r in steps if r.status_code != 201]
    if failed:
        raise RuntimeError(f"chantilly setup: {failed[0].status_code} {failed[0].text}")
