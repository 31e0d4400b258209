"""The Redis client for STATE_URL: one server (`redis://`, `rediss://`, `unix://`) or a
Redis/Valkey Cluster (`redis+cluster://host:port[,host:port…]`, the seed nodes).

Both clients are built without automatic retries: a resent append could apply twice (clients
retry with an Idempotency-Key instead, which is exactly-once). The cluster client still
follows MOVED/ASK redirects (the redirected command was not executed) and refreshes its slot
map after a node error, so a failover is a few 503s, then the new primary.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from redis import asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.backoff import NoBackoff
from redis.retry import Retry

CLUSTER_SCHEME = "redis+cluster://"

RedisClient = aioredis.Redis | RedisCluster


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEME)


def cluster_seeds(url: str) -> tuple[list[tuple[str, int]], dict[str, str]]:
    """`redis+cluster://[user:password@]host:port[,host:port…][/]` → seed nodes, credentials."""
    rest = url[len(CLUSTER_SCHEME) :].split("?", 1)[0].rstrip("/")
    credentials: dict[str, str] = {}
    if "@" in rest:
        auth, rest = rest.rsplit("@", 1)
        user, _, password = auth.partition(":")
        if user:
            credentials["username"] = unquote(user)
        if password:
            credentials["password"] = unquote(password)
    seeds = []
    for node in rest.split(","):
        host, _, port = node.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"a cluster seed must be host:port, got {node!r}")
        seeds.append((host.strip("[]"), int(port)))
    return seeds, credentials


def open_redis(url: str, timeout_seconds: float) -> RedisClient:
    common: dict[str, Any] = {
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
    }
    if not is_cluster_url(url):
        return aioredis.Redis.from_url(url, **common)
    seeds, credentials = cluster_seeds(url)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in seeds],
        # a shard whose primary is being replaced must not stop the others
        require_full_coverage=False,
        **credentials,
        **common,
    )
