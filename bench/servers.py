"""The servers under test: app subprocesses in their own process groups, and a Valkey.

Each app is served the way our functions are deployed (`python -m shared.server`: uvicorn with
uvloop + httptools and the connection protections, no access log), on 127.0.0.1, a free port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from shared import hashseed

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """`python -m shared.server --app <target>` with its own environment and log file.

    `command` replaces that argv (given the port) for a server that is not one of ours.
    """

    def __init__(
        self,
        name: str,
        target: str,
        env: dict[str, str],
        logs: Path,
        command: Callable[[int], list[str]] | None = None,
    ) -> None:
        self.name, self.target, self.command = name, target, command
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # each server its own registry and event log, so runs never see each other's models
        data = {
            "MODEL_REGISTRY_URI": f"file://{logs / name / 'registry'}",
            "EVENTS_DIR": str(logs / name / "events"),
            "LOG_LEVEL": "WARNING",
        }
        # the fixed hash seed, as the image sets it: no start-up re-exec (shared/hashseed.py)
        seed = {hashseed.ENV_VAR: hashseed.HASH_SEED}
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "ENV": "test", **seed, **data, **env}
        self.log = logs / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def argv(self) -> list[str]:
        if self.command is not None:
            return self.command(self.port)
        return [
            *(sys.executable, "-m", "shared.server", "--app", self.target),
            *("--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"),
        ]

    def children(self) -> list[int]:
        """Direct children of the server process (gunicorn's workers), from /proc (Linux)."""
        task = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        with contextlib.suppress(OSError):
            return [int(pid) for pid in task.read_text().split()]
        return []

    def start(self) -> None:
        argv = self.argv()
        with self.log.open("ab") as out:
            # A new session = a new process group, so stop() reaches any child it spawns.
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Any HTTP answer means the app is serving (the echo has no /health route)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; log:\n{self.tail()}")
            try:
                httpx.get(f"{self.url}/health", timeout=1.0)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError(f"{self.name} not serving after {timeout}s; log:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
