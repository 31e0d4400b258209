"""The image's entrypoint, run without Docker: the Dockerfile's own ENV, WORKDIR and CMD,
with the image paths (/app, /opt/venv) moved onto this checkout and its venv, plus what every
deployment sets (FUNCTION_SOURCE of the group) and PORT / STATE_URL / MODEL_REGISTRY_URI.
Each group whose functions/<group>/main.py exists must answer GET /health (and /ready) 200;
a group not written yet is skipped, and picked up as soon as its main.py appears."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy import dockerfile, render
from tests.deploy.conftest import ROOT
from tests.servers import free_port

START_TIMEOUT = 90.0  # all groups start in parallel; each imports River, pandas, sklearn
PASS_THROUGH = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LANG", "LC_ALL", "TZ")


METRICS_TOKEN = "image-test-metrics-token-0123456789"


def image_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The container's environment, localized: Dockerfile ENV with /app and /opt/venv mapped."""
    image = dockerfile.parse()
    env = dockerfile.localize(image["env"], {"/app": str(ROOT), "/opt/venv": sys.prefix})
    env.update({k: os.environ[k] for k in PASS_THROUGH if k in os.environ})
    env.update(
        HOME=str(tmp),  # the image's HOME=/tmp, here a private one
        STATE_URL="memory://",
        MODEL_REGISTRY_URI=f"file://{tmp / 'registry'}",
        EVENTS_DIR=str(tmp / "events"),
        **extra,
    )
    return env


class Served:
    def __init__(self, group: str, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.group, self.proc, self.port, self.log = group, proc, port, log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the launcher and any workers
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


def test_dockerfile_is_one_image_for_every_group() -> None:
    image = dockerfile.parse()
    assert image["base"].startswith("python:3.11-slim")
    assert image["stages"] == 2  # the build stage's compilers and caches stay out
    assert image["user"] == "10001:10001"
    assert "HEALTHCHECK" not in image["keywords"]
    assert image["cmd"] == ["python", "-m", "shared.server"] and image["entrypoint"] is None
    env = image["env"]
    assert env["PYTHONPATH"] == "/app" and env["FUNCTION_TARGET"] == "app"
    assert env["FUNCTION_USE_ASGI"] == "true" and env["PORT"] == "8080"
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert "FUNCTION_SOURCE" not in env  # each deployment names its group, none is implied
    text = (ROOT / "Dockerfile").read_text()
    assert "COPY requirements.txt" in text and "-r /tmp/requirements.txt" in text


def test_dockerignore_sends_only_what_the_image_needs() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    assert {line[1:] for line in lines if line.startswith("!")} == {
        "requirements.txt",
        "shared",
        "compat",
        "functions",
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    """Every existing group, started concurrently exactly as the image's CMD starts it."""
    image = dockerfile.parse()
    cwd = dockerfile.localize({"WORKDIR": image["workdir"]}, {"/app": str(ROOT)})["WORKDIR"]
    table = render.load_table()
    running: dict[str, Served] = {}
    try:
        for group in render.GROUPS:
            source = table["functions"][group]["source"]
            if not (ROOT / source).exists():
                continue
            tmp = tmp_path_factory.mktemp(f"image-{group}")
            port = free_port()
            # ADMIN_API_KEY and METRICS_TOKEN as deploy/functions.yaml's secret_env sets them:
            # the image's ENV=prod (TENANT_AUTH=keys) refuses to start without the admin key,
            # and keeps /metrics shut without the token
            env = image_env(
                tmp,
                PORT=str(port),
                HOST="127.0.0.1",
                FUNCTION_SOURCE=source,
                ADMIN_API_KEY="image-test-admin-key-0123456789",
                METRICS_TOKEN=METRICS_TOKEN,
            )
            log = tmp / "server.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    image["cmd"],
                    cwd=cwd,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    executable=_which(image["cmd"][0], env["PATH"]),
                )
            running[group] = Served(group, proc, port, log)
        deadline = time.monotonic() + START_TIMEOUT
        pending = dict(running)
        while pending and time.monotonic() < deadline:
            for group, server in list(pending.items()):
                if server.proc.poll() is not None:
                    pending.pop(group)  # exited: the test reports its log
                    continue
                try:
                    httpx.get(f"{server.url}/health", timeout=1.0)
                    pending.pop(group)
                except httpx.TransportError:
                    pass
            time.sleep(0.2)
        yield running
    finally:
        for server in running.values():
            server.stop()


def _which(command: str, path: str) -> str:
    for directory in path.split(":"):
        candidate = Path(directory) / command
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise AssertionError(f"{command} not on the image PATH (localized): {path}")


def _log(server: Served) -> str:
    return server.log.read_text(errors="replace")[-3000:]


@pytest.mark.parametrize("group", render.GROUPS)
def test_entrypoint_serves_health(served: dict[str, Served], group: str) -> None:
    source = ROOT / "functions" / group / "main.py"
    if not source.exists():
        pytest.skip(f"functions/{group}/main.py does not exist yet (picked up when it does)")
    server = served[group]
    assert server.proc.poll() is None, f"{group} exited:\n{_log(server)}"
    health = httpx.get(f"{server.url}/health", timeout=5.0)
    assert health.status_code == 200, _log(server)
    assert health.json() == {"status": "ok"}
    ready: Any = httpx.get(f"{server.url}/ready", timeout=5.0)
    assert ready.status_code == 200, ready.text
    # /metrics: the scraper's Bearer token (Prometheus' `authorization`), nobody else
    assert httpx.get(f"{server.url}/metrics", timeout=5.0).status_code == 401
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert httpx.get(f"{server.url}/metrics", headers=bearer, timeout=5.0).status_code == 200


def test_training_job_command_runs_in_the_image(tmp_path: Path) -> None:
    """The Cloud Run Job's command (same image) resolves: its CLI answers --help."""
    command = render.load_table()["train_job"]["command"]
    env = image_env(tmp_path)
    result = subprocess.run(
        [_which(command[0], env["PATH"]), *command[1:], "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "JOB_TENANT" in result.stdout
