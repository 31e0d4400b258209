"""Writes that ride along: commands handed to the connection to go out in the round trip of
the next request's script call, instead of in one of their own.

A warm predict or predict_learn is one script call (a keep, an append). What it causes on the
side, the monitor's audit rows and counters, is buffered and written a few tens of
milliseconds later; on its own that write is a second round trip every flush. Riding, it is
sent in the same pipeline as a request's script call that goes out anyway, so while requests
keep coming it costs none. Whoever hands riders over keeps its own timer for when no request
comes (shared/monitoring/monitor.py: FLUSH_DELAY).

Riders never change the request's own call: they are sent before it, their answers are read
and handed back to `landed`, and a rider's error is never the request's. Only a connection
that fails fails both (the request answers 503 as it would have anyway; the rider is dropped
and counted, as a failed flush is).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rider:
    # raw commands, sent in order before the carrying call; EVALSHA of a script registered
    # on the connection (its source is reloaded if the server lost it)
    commands: list[tuple[Any, ...]]
    # called exactly once: None when every command answered, else the first error
    landed: Callable[[BaseException | None], None]


# asked, synchronously, before every carrying call: a Rider, or None when nothing is due
Board = Callable[[], Rider | None]
