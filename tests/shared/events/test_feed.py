"""The SSE feed's bounded reads: where a resume starts, the local log read backwards and
forwards in bounded pieces, and the local resume's window and scan cap."""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path

import pytest

from shared.events import feed, follow
from shared.events.feed import LocalFeed, resume_start
from shared.events.follow import FileFollower

NOW = 1_000_000.0
WINDOW = 60.0

START = [
    # (the id's time, where the search starts): `window` before it, within [now-window, now]
    ("recent", NOW - 10, NOW - 60),
    ("just now", NOW, NOW - 60),
    ("time 0", 0.0, NOW - 60),  # was: the whole history
    ("long ago", NOW - 86_400, NOW - 60),
    ("a little ahead (skew)", NOW + 30, NOW - 30),
    ("far ahead", NOW + 10**9, NOW),
    ("unknown time (v4 id)", None, NOW - 60),
]


@pytest.mark.parametrize(("since", "start"), [c[1:] for c in START], ids=[c[0] for c in START])
def test_resume_start_is_within_the_window(since: float | None, start: float) -> None:
    assert resume_start(since, WINDOW, NOW) == start


LINES = [
    b"",
    b"one\n",
    b"one\ntwo\n",
    b"one\ntwo\npartial",
    b"\n\nx\n\n",
    b"a" * 50 + b"\n" + b"b" * 7 + b"\n" + b"c" * 33 + b"\n",
]


@pytest.mark.parametrize("data", LINES)
@pytest.mark.parametrize("read_back", [1, 3, 16, 1024])
def test_lines_backwards(data: bytes, read_back: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed, "READ_BACK_BYTES", read_back)
    expected, offset = [], 0
    for line in data.split(b"\n")[:-1]:  # whole lines only
        if line.strip():
            expected.append((offset, line))
        offset += len(line) + 1
    assert list(feed._lines_backwards(io.BytesIO(data))) == expected[::-1]


def test_follower_reads_in_bounded_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow, "READ_BYTES", 7)
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"")
    follower = FileFollower(path, from_start=True)
    lines = [f"line-{i}".encode() * (i + 1) for i in range(5)]
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    got: list[bytes] = []
    for _ in range(1000):  # each call reads at most READ_BYTES
        got += follower.read_lines()
        if follower.position == path.stat().st_size:
            break
    assert got == lines


def _id_at(at: float) -> str:
    """A UUIDv7-shaped event id minted at `at`."""
    return f"{int(at * 1000):012x}7{uuid.uuid4().hex[:19]}"


def _event(tenant: str, at: float) -> dict:
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"
    return {
        "specversion": "1.0",
        "id": _id_at(at),
        "type": "model.created",
        "tenant": tenant,
        "time": iso,
        "data": {},
    }


def _write(path: Path, events: list[dict]) -> list[int]:
    """The events as lines; the offset right after each."""
    ends, data = [], b""
    for event in events:
        data += json.dumps(event).encode() + b"\n"
        ends.append(len(data))
    path.write_bytes(data + b'{"partial')  # a line still being written is skipped
    return ends


def test_local_resume_is_bounded(tmp_path: Path) -> None:
    now = time.time()
    old = [_event("acme", now - 3600) for _ in range(3)]  # outside the 60 s window
    recent = [_event("acme", now - 1) for _ in range(5)]
    path = tmp_path / "acme.jsonl"
    ends = _write(path, old + recent)
    roomy = LocalFeed(str(tmp_path), 0.1, WINDOW, max_scan=100, executor=None)
    tight = LocalFeed(str(tmp_path), 0.1, WINDOW, max_scan=2, executor=None)
    cases = [
        # (feed, Last-Event-ID, the offset it resumes at; None: from the end, i.e. now)
        (roomy, recent[1]["id"], ends[4]),  # right after it
        (roomy, recent[4]["id"], ends[7]),  # the last one: nothing to replay
        (tight, recent[3]["id"], ends[6]),  # found within the cap
        (tight, recent[1]["id"], None),  # farther back than the cap: from now
        # an id older than the window is not searched for: the window's first event
        (roomy, old[0]["id"], ends[2]),
        (roomy, _id_at(now + 1), None),  # later than every event: from the end
        (roomy, "0" * 32, ends[2]),  # unknown time (v4): the window's first event
        (roomy, "00000000000070008000000000000000", ends[2]),  # time 0: the same
    ]
    for source, after, offset in cases:
        assert source._resume_position(path, after) == offset, (after, offset)
    assert roomy._resume_position(tmp_path / "missing.jsonl", recent[0]["id"]) == 0
