"""One connection to the Redis that holds the state, shared by everything stored there.

The model store (shared/state/redis_store.py), the series windows (shared/state/series.py)
and the tenant key records (shared/state/tenant_keys.py) each hold this object, built once
by the model store: one client, one breaker and one error mapping, so a store that just
failed fails every caller at once, whichever of them it is. Nobody reaches into another
module's client: they all call through here.

STATE_URL picks the client (shared/state/redis_client.py): one server or a Cluster. Every
script touches the keys of one hash slot, so both run the same scripts.

On one server, a request's script call (`run`) also carries what the boards hand over
(shared/state/riders.py): the monitor's buffered writes ride in its round trip. Scripts in a
pipeline are sent as bare EVALSHA (redis-py would first ask SCRIPT EXISTS, a round trip of its
own each time) and reloaded only when the server answers NOSCRIPT.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import PipelineCommand, RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import (
    AskError,
    ClusterDownError,
    NoScriptError,
    ReadOnlyError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.monitoring.prometheus import count_state_error
from shared.state.base import ReplicasUnconfirmed, StateUnavailable
from shared.state.breaker import CircuitBreaker
from shared.state.redis_client import open_redis
from shared.state.riders import Board, Rider

T = TypeVar("T")

# What a store that is down, or a cluster in the middle of a failover, answers. None of these
# executed the command (a connection error might have: the caller drops its copy, and a retry
# with the Idempotency-Key is exactly-once). MOVED/ASK (AskError, MovedError's base) reach us
# only from the pipelines sent to one node below; the cluster client follows them itself
# elsewhere. `call` tells them apart: a redirection is a live store whose slot moved.
UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ClusterDownError,
    TryAgainError,
    ReadOnlyError,
    AskError,
    SlotNotCoveredError,
)


class RedisConnection:
    def __init__(
        self,
        url: str,
        timeout_seconds: float = 2.0,
        breaker_cooldown_seconds: float = 0.0,
        *,
        min_replicas: int = 0,
        replica_timeout_ms: int = 500,
    ) -> None:
        self.client = open_redis(url, timeout_seconds)
        self.breaker = CircuitBreaker(breaker_cooldown_seconds)
        self.min_replicas = min_replicas
        self.replica_timeout_ms = replica_timeout_ms
        self._slot_map_stale = False  # a Cluster node failed or redirected: re-read the map
        self._boards: list[Board] = []  # asked for riders before each `run` (one server only)
        self._sources: dict[str, str] = {}  # sha → source of every registered script

    @property
    def is_cluster(self) -> bool:
        return isinstance(self.client, RedisCluster)

    def script(self, source: str) -> AsyncScript:
        """A script of shared/state/lua.py, registered on this connection (EVALSHA)."""
        script: AsyncScript = self.client.register_script(source)  # type: ignore[assignment]
        self._sources[script.sha] = source
        return script

    def evalsha(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> tuple:
        """The raw command of one script call, for a pipeline or a rider."""
        return ("EVALSHA", script.sha, len(keys), *keys, *args)

    def board(self, take: Board) -> Callable[[], None]:
        """Have `take` asked for a Rider before each `run`; returns what unregisters it. A
        Cluster carries nothing (one pipeline cannot span the slots a rider may touch)."""
        if self.is_cluster:
            return lambda: None
        self._boards.append(take)

        def leave() -> None:
            if take in self._boards:
                self._boards.remove(take)

        return leave

    async def run(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """One script call, carrying any riders the boards hand over in the same round trip.
        To be run inside `call`."""
        riders = [rider for take in self._boards if (rider := take()) is not None]
        if not riders:
            return await script(keys=keys, args=args)
        pipe = self.client.pipeline(transaction=False)
        for rider in riders:
            for command in rider.commands:
                pipe.execute_command(*command)
        pipe.execute_command(*self.evalsha(script, keys, args))
        try:
            results = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # nothing came back: the riders fail with the call
            for rider in riders:
                rider.landed(exc)
            raise
        await self._land(riders, results)
        result = results[-1]
        if isinstance(result, NoScriptError):  # Script.__call__ loads it and calls again
            return await script(keys=keys, args=args)
        if isinstance(result, Exception):
            raise result
        return result

    async def _land(self, riders: list[Rider], results: list[Any]) -> None:
        """Hand each rider its outcome; commands the server lost the script of run again."""
        start = 0
        for n, rider in enumerate(riders):
            answers = results[start : start + len(rider.commands)]
            start += len(rider.commands)
            try:
                await self._rerun_unloaded(rider.commands, answers)
            except Exception as exc:
                rider.landed(exc)
                continue
            except BaseException as exc:  # cancelled: no news for this rider and the rest
                for left in riders[n:]:
                    left.landed(exc)
                raise
            error = next((a for a in answers if isinstance(a, Exception)), None)
            rider.landed(error)

    async def _rerun_unloaded(self, commands: Sequence[tuple], answers: list[Any]) -> None:
        """Load the scripts the server answered NOSCRIPT for and run those calls again, in
        order, replacing their answers (a server restarted or flushed its scripts)."""
        for i, (command, answer) in enumerate(zip(commands, answers, strict=True)):
            if isinstance(answer, NoScriptError):
                await self.client.script_load(self._sources[command[1]])
                answers[i] = await self.client.execute_command(*command)

    async def send(self, commands: Sequence[tuple]) -> list[Any]:
        """Raw commands as one pipeline on one server (scripts as bare EVALSHA, reloaded if
        lost); the first error is raised. To be run inside `call`; not on a Cluster."""
        pipe: Pipeline = self.client.pipeline(transaction=False)  # type: ignore[assignment]
        for command in commands:
            pipe.execute_command(*command)
        answers = await pipe.execute(raise_on_error=False)
        await self._rerun_unloaded(commands, answers)
        error = next((a for a in answers if isinstance(a, Exception)), None)
        if error is not None:
            raise error
        return answers

    async def call(self, operation: Callable[[], Awaitable[T]], *, probe: bool = False) -> T:
        """One store call through the breaker (shared/state/breaker.py) and the error mapping
        (unreachable → StateUnavailable). `probe` tries the store even while the breaker is
        open (readiness)."""
        if not probe and not self.breaker.admit():
            raise StateUnavailable(
                "state store unreachable: failing fast after a recent failure "
                "(STATE_BREAKER_COOLDOWN_SECONDS)"
            )
        try:
            result = await operation()
        except AskError as exc:
            # MOVED/ASK: one slot moved (a failover, a resharding) and its node answered. Not
            # a store that is down: the breaker, shared by every tenant, stays closed; the
            # slot map is re-read before the next write and this request answers 503 once.
            self._slot_map_stale = True
            self.breaker.succeeded()
            count_state_error(exc.__class__.__name__)
            raise StateUnavailable(f"state store: slot moved ({exc.__class__.__name__})") from exc
        except StateUnavailable:
            self.breaker.succeeded()  # the store answered (replicas did not confirm in time)
            raise
        except UNAVAILABLE as exc:
            self.breaker.failed()
            count_state_error(exc.__class__.__name__)
            raise StateUnavailable(f"state store unreachable: {exc.__class__.__name__}") from exc
        except RedisClusterException as exc:
            # the cluster client's own error: "cannot be connected" when no seed node answers
            # (a store that is down); any other is ours (a command it cannot route) and stays
            if not str(exc).startswith("Redis Cluster cannot be connected"):
                self.breaker.succeeded()
                raise
            self.breaker.failed()
            count_state_error(exc.__class__.__name__)
            raise StateUnavailable("state store unreachable: no cluster seed node answers") from exc
        except Exception:
            self.breaker.succeeded()  # the store answered (with an error of its own)
            raise
        except BaseException:
            self.breaker.abandoned()  # cancelled: no news about the store
            raise
        self.breaker.succeeded()
        return result

    async def scripts(
        self, calls: Sequence[tuple[AsyncScript, Sequence[str], Sequence[Any]]]
    ) -> list[Any]:
        """Several script calls in one round trip: a pipeline on one server; on a Cluster,
        whose pipelines refuse EVALSHA, concurrent calls (each to its slot's node). To be
        run inside `call`."""
        if self.is_cluster:
            return list(
                await asyncio.gather(
                    *(script(keys=keys, args=args) for script, keys, args in calls)
                )
            )
        return await self.send([self.evalsha(script, keys, args) for script, keys, args in calls])

    async def write(
        self,
        script: AsyncScript,
        keys: Sequence[str],
        args: Sequence[Any],
        confirmed: Callable[[Any], bool],
    ) -> Any:
        """Run a writing script; with STATE_MIN_REPLICAS=N ≥ 1, follow it on the SAME
        connection by `WAIT N timeout` (WAIT counts the writes of its own connection, so
        another connection from the pool would confirm nothing). `confirmed(result)` says
        whether the result is one that must be replicated before it is answered (an append,
        a replay of one); if fewer than N replicas confirm, ReplicasUnconfirmed (503)."""
        if self.min_replicas == 0:
            return await self.call(lambda: self.run(script, keys, args))
        if self.is_cluster:
            result, replicas = await self.call(
                lambda: self._script_then_wait_on_node(script, keys, args)
            )
        else:
            result, replicas = await self.call(lambda: self._script_then_wait(script, keys, args))
        if confirmed(result) and int(replicas) < self.min_replicas:
            raise ReplicasUnconfirmed(
                f"append confirmed by {replicas} of {self.min_replicas} replicas "
                f"within {self.replica_timeout_ms} ms"
            )
        return result

    async def _script_then_wait(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]
    ) -> list[Any]:
        # a pipeline holds one connection from the pool for all its commands; the script as
        # bare EVALSHA (a Script object in a pipeline costs a SCRIPT EXISTS round trip first)
        for _ in range(2):
            pipe = self.client.pipeline(transaction=False)
            pipe.execute_command(*self.evalsha(script, keys, args))
            pipe.wait(self.min_replicas, self.replica_timeout_ms)
            result, replicas = await pipe.execute(raise_on_error=False)
            if isinstance(result, NoScriptError):  # nothing ran: load it, then once more
                await self.client.script_load(self._sources[script.sha])
                continue
            for answer in (result, replicas):
                if isinstance(answer, Exception):
                    raise answer
            return [result, replicas]
        raise NoScriptError("the script was lost again right after it was loaded")

    async def _script_then_wait_on_node(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]
    ) -> list[Any]:
        """On a Cluster: EVALSHA and WAIT as one pipeline on one connection to the primary of
        the keys' slot (the cluster pipeline cannot route a keyless WAIT to that node)."""
        cluster = self.client
        assert isinstance(cluster, RedisCluster)
        await cluster.initialize()  # the first slot map (a no-op afterwards)
        if self._slot_map_stale:
            self._slot_map_stale = False
            await self._reread_slot_map(cluster)
        node = cluster.get_node_from_key(keys[0])
        wait = ("WAIT", self.min_replicas, self.replica_timeout_ms)
        for _ in range(2):
            commands = [
                PipelineCommand(0, "EVALSHA", script.sha, len(keys), *keys, *args),
                PipelineCommand(1, *wait),
            ]
            try:
                await node.execute_pipeline(commands)
            except (RedisConnectionError, RedisTimeoutError, OSError):
                self._slot_map_stale = True  # as the client does itself: re-read the map
                raise
            result, replicas = commands[0].result, commands[1].result
            if isinstance(result, NoScriptError):  # a node that never ran it (a new primary)
                await node.execute_command("SCRIPT", "LOAD", script.script)
                continue
            if isinstance(result, ClusterDownError | TryAgainError | ReadOnlyError):
                self._slot_map_stale = True  # a failover under way: nothing executed
                raise result
            if isinstance(result, Exception):
                raise result
            if isinstance(replicas, Exception):
                raise replicas
            return [result, replicas]
        raise StateUnavailable("state store: the script could not be loaded on its node")

    @staticmethod
    async def _reread_slot_map(cluster: RedisCluster) -> None:
        """Re-read which node serves which slot. `RedisCluster.initialize()` does so only
        when the client's private `_initialize` flag is set, so this goes through its
        `nodes_manager.initialize()` (public in redis-py 5 to 8) instead of setting that flag."""
        await cluster.nodes_manager.initialize()

    async def close(self) -> None:
        await self.client.aclose()
