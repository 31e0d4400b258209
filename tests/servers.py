"""Start, stop and kill real server processes of our own app for tests."""

from __future__ import annotations

import os
import random
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from shared import hashseed

ROOT = Path(__file__).resolve().parent.parent


PORTS_PER_WORKER = 1000


def _ephemeral_low() -> int:
    """Where the kernel's ephemeral ports begin: the ports of outgoing connections and of
    every bind to port 0 are taken from there up."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _worker_ports() -> Iterator[int]:
    """This process's ports, in a block of its own below the ephemeral range: a port chosen
    by binding port 0 could meanwhile become another pytest-xdist worker's server port or
    any process's outgoing connection, and a server started on it then fails to bind."""
    low, first = _ephemeral_low(), 10000
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    blocks = max(1, (low - first) // PORTS_PER_WORKER)
    start = first + (worker % blocks) * PORTS_PER_WORKER
    offset = random.randrange(PORTS_PER_WORKER)  # two sessions at once rarely meet
    while True:
        for i in range(PORTS_PER_WORKER):
            yield start + (offset + i) % PORTS_PER_WORKER


_ports = _worker_ports()


def free_port() -> int:
    """A port nothing listens on now, never handed out twice in a row by this process."""
    for _ in range(PORTS_PER_WORKER):
        port = next(_ports)
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free port left in this worker's block")


class AppProcess:
    """One app server (`python -m shared.server`) in its own process group."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        target: str = "functions.gateway:app",
        function_source: str | None = None,
        log: Path | None = None,
        open_files: int | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "ENV": "test", "FUNCTION_TARGET": "app"}
        self.env[hashseed.ENV_VAR] = hashseed.HASH_SEED  # as deployed: no re-exec needed
        self.env.update(env)
        self.open_files = open_files  # RLIMIT_NOFILE (soft and hard) of the server, if set
        # shared.server, as every deployment serves: the functions-framework target of one
        # group (FUNCTION_SOURCE), or an app by import path
        app = ["--source", function_source] if function_source is not None else ["--app", target]
        self.argv = [
            *(sys.executable, "-m", "shared.server", *app, "--host", "127.0.0.1"),
            *("--port", str(self.port), "--log-level", "warning"),
        ]
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> AppProcess:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=self._limit_open_files if self.open_files else None,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app exited with {self.process.returncode}: {self.argv}")
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError(f"app on {self.url} did not become healthy")

    def _limit_open_files(self) -> None:
        assert self.open_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))

    def kill(self) -> None:
        """kill -9 the whole process group: no shutdown hooks, no flushing."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
