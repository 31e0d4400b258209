"""Leader/follower group commit of store calls (architecture.md §4, the kept predict).

Concurrent calls under one key (a model at one (uid, seq)) share a round trip: the first, with
nothing of its key in flight, is sent at once by its own caller (no added latency when
unloaded); those arriving while it is in flight queue, and when it returns they go together
as one call (at most `max_group` a call), and so on while more queue. Calls under different
keys never share one, nor wait for each other.

A queued group is sent by a task of its own, not by any caller, so no caller's cancellation
strands another: a caller that leaves drops only its own answer (its item is sent unless it
left before its group was), and a group's failure is every member's error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")  # an item
R = TypeVar("R")

# send(key, items) → one answer per item, in order: ONE store call for all of them
Send = Callable[[K, list[T]], Awaitable[list[R]]]


class GroupCommit(Generic[K, T, R]):
    def __init__(self, send: Send[K, T, R], max_group: int) -> None:
        self._send = send
        self.max_group = max_group
        # key → the items queued behind its call in flight (the key is absent when none is)
        self._queued: dict[K, list[tuple[T, asyncio.Future[R]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak refs

    async def submit(self, key: K, item: T) -> R:
        queue = self._queued.get(key)
        if queue is not None:  # a call of this key is in flight: ride in the next one
            future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
            queue.append((item, future))
            return await future
        self._queued[key] = []
        try:
            (answer,) = await self._send(key, [item])
        finally:  # answered, failed or cancelled: whoever queued meanwhile is sent now
            self._follow(key)
        return answer

    def _follow(self, key: K) -> None:
        if not self._queued[key]:
            del self._queued[key]
            return
        task = asyncio.get_running_loop().create_task(self._drain(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, key: K) -> None:
        """Send the queued groups of `key` one after another until none is left."""
        queue = self._queued[key]
        try:
            while True:
                # a caller gone before its group was sent has its item dropped, not sent
                queue[:] = [(item, future) for item, future in queue if not future.done()]
                if not queue:
                    break
                group = queue[: self.max_group]
                del queue[: self.max_group]
                try:
                    answers = await self._send(key, [item for item, _ in group])
                except Exception as exc:
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                except BaseException:  # this task cancelled (the loop closing): fail them all
                    for _, future in [*group, *queue]:
                        future.cancel()
                    raise
                for (_, future), answer in zip(group, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
        finally:
            del self._queued[key]
