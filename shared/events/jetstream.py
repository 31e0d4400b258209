"""NATS plumbing shared by the relay, the stream, live events and the CLI: connect, make sure
ML_EVENTS exists, and what counts as NATS being down.

The one module of the event bus that imports nats-py (and aiohttp under it) at import time;
the others import it where NATS_URL is set, so a process without NATS never loads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats import errors as nats_errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js import errors as js_errors
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

from shared.events.cloudevent import STREAM, SUBJECT_PREFIX

log = logging.getLogger("shared.events")

STREAM_SUBJECTS = f"{SUBJECT_PREFIX}.>"
# What makes NATS unavailable (503): its connection or its answer in time, not our own bug.
NATS_DOWN = (
    nats_errors.ConnectionClosedError,
    nats_errors.ConnectionReconnectingError,
    nats_errors.NoServersError,
    nats_errors.StaleConnectionError,
    nats_errors.TimeoutError,
    nats_errors.NoRespondersError,
    js_errors.ServiceUnavailableError,
    TimeoutError,
    OSError,
)


async def _on_error(exc: Exception) -> None:
    # nats-py reports every failed reconnect attempt; the relay logs the outage once itself.
    log.debug("nats: %s", exc)


async def _on_disconnected() -> None:
    log.info("nats: disconnected")


async def _on_reconnected() -> None:
    log.info("nats: reconnected")


async def connect_nats(url: str, *, name: str, connect_timeout: float = 2.0) -> NATS:
    """Connect, reconnecting forever afterwards; raise if the first connect takes too long.

    With `max_reconnect_attempts=-1` nats-py would retry the *first* connect forever too, so
    it is bounded here. `pending_size=0` makes publishing fail at once while reconnecting
    instead of buffering: the outbox is the buffer.
    """
    nc = NATS()
    # NATS_URL may list several seed servers of a cluster, comma-separated (as the nats CLI
    # takes them); the client learns the others from the cluster once connected.
    servers = [u.strip() for u in url.split(",") if u.strip()]
    try:
        await asyncio.wait_for(
            nc.connect(
                servers,
                name=name,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,  # type: ignore[arg-type]
                connect_timeout=connect_timeout,  # type: ignore[arg-type]
                pending_size=0,
                error_cb=_on_error,
                disconnected_cb=_on_disconnected,
                reconnected_cb=_on_reconnected,
            ),
            timeout=connect_timeout + 0.5,
        )
    except BaseException:
        with contextlib.suppress(Exception):
            await nc.close()
        raise
    return nc


async def ensure_stream(js: JetStreamContext, replicas: int | None = None) -> None:
    """Create ML_EVENTS on `ml.events.>`, or add that subject to an existing ML_EVENTS.

    `replicas` (EVENTS_REPLICAS) is the stream's replica count: a new stream is created with
    it, and an existing one with another count is updated to it (JetStream moves a stream
    between R1 and R3 online). If the server refuses (a single server cannot hold R3), the
    stream keeps its count and a warning says so: events still flow, less replicated.
    `None` (EVENTS_REPLICAS unset, and the subscriber CLI) creates R1 and never changes an
    existing stream's count, so a count an operator tuned is not undone at every start.
    The rest of an existing stream's configuration (retention, limits) is kept, so an
    operator can tune it without start-up undoing it.
    """
    try:
        info = await js.stream_info(STREAM)
    except NotFoundError:
        # Creating an identical stream twice succeeds, so racing instances are fine.
        await js.add_stream(
            StreamConfig(
                name=STREAM,
                subjects=[STREAM_SUBJECTS],
                storage=StorageType.FILE,
                num_replicas=replicas or 1,
                description="online-ml lifecycle events (CloudEvents 1.0 JSON)",
            )
        )
        return
    config = info.config
    subjects = config.subjects or []
    new_subjects = STREAM_SUBJECTS not in subjects
    if new_subjects:
        # Narrower subjects under ml.events would overlap the wildcard: replace them.
        keep = [s for s in subjects if not s.startswith(f"{SUBJECT_PREFIX}.")]
        config.subjects = [*keep, STREAM_SUBJECTS]
    current = config.num_replicas or 1
    rescale = replicas is not None and current != replicas
    if rescale:
        config.num_replicas = replicas
    if not (new_subjects or rescale):
        return
    try:
        await js.update_stream(config)
    except APIError as exc:
        if not rescale:
            raise
        log.warning(
            "stream %s has %d replicas and EVENTS_REPLICAS is %d, but the update was refused "
            "(%s); keeping %d",
            STREAM,
            current,
            replicas,
            exc.description or exc,
            current,
        )
        config.num_replicas = current
        if new_subjects:
            await js.update_stream(config)
        return
    if rescale:
        log.info("stream %s: replicas %d -> %d (EVENTS_REPLICAS)", STREAM, current, replicas)
