"""Round trips per request from two INFO snapshots, less what the snapshots themselves add."""

from __future__ import annotations

from bench.roundtrips import Snapshot, difference, per_request


def test_per_request_takes_off_the_snapshots_own_calls() -> None:
    first = Snapshot(reads=10, commands={"info": 4})
    second = Snapshot(reads=12, commands={"info": 6})
    idle = difference(first, second)  # two INFO calls per snapshot, two reads
    before = Snapshot(reads=100, commands={"info": 10, "evalsha": 5, "hmget": 5})
    after = Snapshot(reads=302, commands={"info": 12, "evalsha": 205, "hmget": 205, "xadd": 200})
    counts = per_request(before, after, idle, requests=200)
    assert counts.round_trips == 1.0
    # commands that did not move (info, once the snapshots are taken off) are left out
    assert counts.commands == {"evalsha": 1.0, "hmget": 1.0, "xadd": 1.0}


def test_background_commands_show_as_fractions() -> None:
    idle = Snapshot(reads=0, commands={})
    before = Snapshot(reads=0, commands={})
    after = Snapshot(reads=210, commands={"evalsha": 200, "lpush": 10})
    counts = per_request(before, after, idle, requests=200)
    assert counts.round_trips == 1.05
    assert counts.commands == {"evalsha": 1.0, "lpush": 0.05}
