"""Loss detection across the upgrade from the store-wide epoch (`ml:epoch`) to the
per-model one: a model recorded under the old epoch is not reported lost while that store is
still there, and is when the store came back empty. Real Valkey, a file registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis

from shared.registry import open_registry
from shared.registry.base import STATE, update_doc
from shared.state import RedisStateStore
from shared.state_loss import StateLoss


async def recorded_by_the_old_version(loss: StateLoss, epoch: str) -> None:
    """state.json as the version with one `ml:epoch` wrote it: that epoch, seq 5."""

    def change(doc: dict[str, Any]) -> None:
        doc.update(epoch=epoch, incarnation=1, seq=5)

    await update_doc(loss.registry, "acme", "m", STATE, change)


@pytest.fixture
def raw(redis_url: str) -> redis.Redis:
    client = redis.Redis.from_url(redis_url)
    yield client  # type: ignore[misc]
    client.close()


async def test_a_model_recorded_under_the_old_global_epoch_is_not_lost(
    redis_url: str, raw: redis.Redis, tmp_path: Path
) -> None:
    raw.set("ml:epoch", "old-global")  # the store the old version recorded, still here
    store = RedisStateStore(redis_url)
    loss = StateLoss(store, open_registry(f"file://{tmp_path}"))
    await recorded_by_the_old_version(loss, "old-global")

    # missing from the store for a harmless reason (never written there, deleted by hand):
    assert await loss.detect("acme", "m", incarnation=1) is None
    assert raw.get("ml:epoch") == b"old-global"  # only read

    await loss.remember("acme", "m", incarnation=1, seq=7)  # the per-model scheme takes over
    doc = (await loss.registry.read_doc("acme", "m", STATE)).doc
    assert doc["epoch"] == raw.get("ml:{acme:m}:epoch").decode() != "old-global"
    assert await loss.detect("acme", "m", incarnation=1) is None
    await store.close()


async def test_an_emptied_store_is_still_a_loss_after_the_upgrade(
    redis_url: str, raw: redis.Redis, tmp_path: Path
) -> None:
    store = RedisStateStore(redis_url)
    loss = StateLoss(store, open_registry(f"file://{tmp_path}"))
    await recorded_by_the_old_version(loss, "old-global")
    assert raw.get("ml:epoch") is None  # the store came back empty: no old epoch either
    assert await loss.detect("acme", "m", incarnation=1) == 5

    raw.set("ml:epoch", "another-global")  # emptied, then an old instance wrote a new one
    await recorded_by_the_old_version(loss, "old-global")
    raw.delete("ml:{acme:m}:epoch")
    assert await loss.detect("acme", "m", incarnation=1) == 5
    await store.close()
