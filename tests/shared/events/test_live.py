"""Live events are sent in the background, bounded: past MAX_WRITES_IN_FLIGHT a new one is
dropped and counted, never queued; the sampler's per-model counters are bounded too."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from shared.events import live
from shared.events.live import LocalLive, _Background
from shared.monitoring import live as sampler_module
from shared.monitoring.live import LiveSampler
from shared.state.memory import MemoryStateStore


async def test_background_drops_and_counts_past_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "MAX_WRITES_IN_FLIGHT", 3)
    background, release = _Background(), asyncio.Event()
    for _ in range(5):
        background.spawn(release.wait())
    assert (len(background.tasks), background.dropped) == (3, 2)
    release.set()
    await background.drain()
    assert not background.tasks


async def test_sampler_counters_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sampler_module, "MAX_COUNTED_MODELS", 3)

    async def no_ledger(tenant: str, name: str):  # never called: no metrics tick here
        raise AssertionError

    publisher = LocalLive(tmp_path, 4096, None)
    sampler = LiveSampler(
        publisher, no_ledger, MemoryStateStore(), every=1_000_000, metrics_seconds=60.0
    )
    for name in ("a", "b", "c", "d", "a", "e"):
        sampler.predicted("acme", name, "predict", {})
    # the least recently counted go first: "b" and "c"
    assert list(sampler._counts) == [("acme", "d"), ("acme", "a"), ("acme", "e")]
    await sampler.close()
    await publisher.close()


async def test_local_live_writes_a_burst_in_order_and_drops_past_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "MAX_WRITES_IN_FLIGHT", 4)
    publisher = LocalLive(tmp_path, 1 << 20, None)
    for n in range(6):  # one burst, before the flush task runs: 4 wait, 2 are dropped
        publisher.publish("acme", "prediction", {"model": "m", "n": n})
    publisher.publish("other", "prediction", {"model": "m", "n": 0})  # dropped too
    await publisher.close()
    publisher.publish("acme", "prediction", {"model": "m", "n": 6})  # room again
    await publisher.close()
    lines = (tmp_path / "live" / "acme.jsonl").read_text().splitlines()
    assert [json.loads(line)["data"]["n"] for line in lines] == [0, 1, 2, 3, 6]
    assert not (tmp_path / "live" / "other.jsonl").exists()
