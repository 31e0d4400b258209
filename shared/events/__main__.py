"""Subscriber CLI: `python -m shared.events tail --tenant acme [--type model.trained]`.

Prints each of the tenant's events as one JSON line as it arrives: from JetStream when
--nats-url or NATS_URL is set, otherwise by following `<events_dir>/<tenant>.jsonl`.
Status messages go to stderr, so stdout is only events. Ctrl-C exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from nats.errors import Error as NatsError
from nats.js.api import DeliverPolicy

from shared.events.cloudevent import EVENT_TYPES, STREAM, nats_subject
from shared.events.follow import FileFollower
from shared.events.jetstream import connect_nats, ensure_stream
from shared.tenancy import TENANT_PATTERN

TAIL_HEARTBEAT_SECONDS = 1.0


def _tenant(value: str) -> str:
    if not TENANT_PATTERN.match(value):
        raise argparse.ArgumentTypeError(f"must match {TENANT_PATTERN.pattern}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m shared.events")
    commands = parser.add_subparsers(dest="command", required=True)
    tail = commands.add_parser("tail", help="print a tenant's events as JSON lines")
    tail.add_argument("--tenant", required=True, type=_tenant)
    tail.add_argument("--type", dest="event_type", choices=EVENT_TYPES, help="only this type")
    tail.add_argument(
        "--nats-url",
        default=os.environ.get("NATS_URL") or None,
        help="JetStream to read (default $NATS_URL); without one, follow the local log",
    )
    tail.add_argument("--events-dir", default=".data/events", help="where the local log is")
    tail.add_argument(
        "--from-start", action="store_true", help="print stored events first, then new ones"
    )
    return parser.parse_args(argv)


class Printer:
    """Writes the events of one tenant (and type) to stdout, one JSON line each."""

    def __init__(self, tenant: str, event_type: str | None) -> None:
        self.tenant = tenant
        self.event_type = event_type

    def __call__(self, raw: bytes) -> None:
        try:
            event: Any = json.loads(raw)
        except ValueError:
            print(f"skipping a line that is not JSON: {raw[:80]!r}", file=sys.stderr)
            return
        # The subject or file already selects the tenant; checking again costs nothing.
        if not isinstance(event, dict) or event.get("tenant") != self.tenant:
            return
        if self.event_type and event.get("type") != self.event_type:
            return
        print(json.dumps(event), flush=True)


async def tail_nats(url: str, emit: Printer, from_start: bool) -> None:
    """An ordered (ephemeral, flow-controlled) JetStream consumer on the tenant's subject."""
    nc = await connect_nats(url, name="online-ml-tail")
    try:
        js = nc.jetstream()
        await ensure_stream(js)
        subject = nats_subject(emit.tenant, emit.event_type)
        sub = await js.subscribe(
            subject,
            stream=STREAM,
            ordered_consumer=True,
            # The consumer lives on one node: if that node dies, the client notices after two
            # missed heartbeats and recreates it after the last event printed (no gap, no
            # double). 1 s heartbeats make that ~2-4 s instead of the default's ~10-15 s.
            idle_heartbeat=TAIL_HEARTBEAT_SECONDS,
            deliver_policy=DeliverPolicy.ALL if from_start else DeliverPolicy.NEW,
        )
        print(f"tailing {subject} on {url}", file=sys.stderr, flush=True)
        async for msg in sub.messages:
            emit(msg.data)
    finally:
        await nc.close()


async def tail_file(path: Path, emit: Printer, from_start: bool, poll: float = 0.2) -> None:
    follower = await asyncio.to_thread(FileFollower, path, from_start)
    print(f"tailing {path}", file=sys.stderr, flush=True)
    while True:
        lines = await asyncio.to_thread(follower.read_lines)
        for line in lines:
            emit(line)
        if not lines:
            await asyncio.sleep(poll)


async def run(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)  # like Ctrl-C: a clean exit 0
    emit = Printer(args.tenant, args.event_type)
    if args.nats_url:
        try:
            await tail_nats(args.nats_url, emit, args.from_start)
        except (OSError, TimeoutError, NatsError) as exc:
            print(f"cannot reach NATS at {args.nats_url}: {exc!r}", file=sys.stderr)
            return 1
    else:
        await tail_file(Path(args.events_dir) / f"{args.tenant}.jsonl", emit, args.from_start)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 0
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, without a second error at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
