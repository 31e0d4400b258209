"""The Redis client for STATE_URL: one server (`redis://`, `rediss://`, `unix://`) or a
Redis/Valkey Cluster (`redis+cluster://host:port[,host:port…]`, the seed nodes;
`rediss+cluster://` for TLS, with `?ssl_ca_certs=<file>` for a private CA and
`?ssl_check_hostname=false` for nodes whose certificate does not name their address). Any
other query option is refused: silently dropping one would run without what it asked for.

Both clients are built without automatic retries: a resent append could apply twice (clients
retry with an Idempotency-Key instead, which is exactly-once). The cluster client still
follows MOVED/ASK redirects (the redirected command was not executed) and refreshes its slot
map after a node error, so a failover is a few 503s, then the new primary.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote

from redis import asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

CLUSTER_SCHEME = "redis+cluster://"
TLS_CLUSTER_SCHEME = "rediss+cluster://"
TLS_OPTIONS = ("ssl_ca_certs", "ssl_check_hostname")  # the query options, TLS only

RedisClient = aioredis.Redis | RedisCluster


def is_cluster_url(url: str) -> bool:
    return url.startswith((CLUSTER_SCHEME, TLS_CLUSTER_SCHEME))


def cluster_seeds(url: str) -> tuple[list[tuple[str, int]], dict[str, str]]:
    """`redis[s]+cluster://[user:password@]host:port[,host:port…][/]` → seed nodes,
    credentials."""
    rest = url.split("://", 1)[1].split("?", 1)[0].rstrip("/")
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


def cluster_tls(url: str) -> dict[str, Any]:
    """The TLS arguments of a cluster URL ({} for `redis+cluster://`); ValueError for a
    query option that is unknown, repeated, or given without TLS."""
    tls = url.startswith(TLS_CLUSTER_SCHEME)
    _, _, query = url.partition("?")
    options: dict[str, Any] = {"ssl": True} if tls else {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in TLS_OPTIONS:
            raise ValueError(
                f"unknown option {name!r} in the cluster URL (known: {', '.join(TLS_OPTIONS)})"
            )
        if not tls:
            raise ValueError(f"{name} needs TLS: use {TLS_CLUSTER_SCHEME}")
        if name in options:
            raise ValueError(f"option {name!r} given twice in the cluster URL")
        if name == "ssl_check_hostname":
            if value not in ("true", "false"):
                raise ValueError(f"ssl_check_hostname must be true or false, got {value!r}")
            options[name] = value == "true"
        else:
            options[name] = value
    return options


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
        **cluster_tls(url),
        **common,
    )
