"""The store batcher's writers, with the store itself replaced by a fake (pure logic:
who writes what, not how)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from worker import store_batcher
from worker.store import Finished
from worker.store_batcher import StoreBatcher


class _Pool:
    """Hands out a dummy connection: the fake store does not use it."""

    def acquire(self) -> _Pool:
        return self

    async def __aenter__(self) -> object:
        return object()

    async def __aexit__(self, *exc: object) -> None:
        return None


def _finished(key: str) -> Finished:
    return Finished(evaluation_id=uuid.uuid4(), event_id=key, org_id=1, entity_type="stack",
                    entity_key=key, kind="update", occurred_at=datetime.now(UTC),
                    resource_count=0, outcome="passed", blocking=False, packs=[],
                    opa_version="test")


@pytest.fixture
def stored(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    batches: list[list[str]] = []

    async def store_batch(_conn: Any, batch: list[Finished]) -> dict[uuid.UUID, datetime]:
        await asyncio.sleep(0)
        batches.append([done.entity_key for done in batch])
        return {done.evaluation_id: datetime.now(UTC) for done in batch}

    monkeypatch.setattr(store_batcher, "store_batch", store_batch)
    return batches


async def test_an_evaluation_queued_as_the_writers_end_is_still_written(
        stored: list[list[str]]) -> None:
    """Handed over in the loop's step right after the last writer ended (before a done
    callback of the writer would have run), it must start a writer of its own."""
    batcher = StoreBatcher(_Pool(), writers=1)  # type: ignore[arg-type]
    first = asyncio.create_task(batcher.store(_finished("first")))
    while not stored:
        await asyncio.sleep(0)
    while batcher.writing:
        await asyncio.sleep(0)
    async with asyncio.timeout(5):  # awaited in this step, as a message's task does
        late = await batcher.store(_finished("late"))
    assert late is not None
    assert await first is not None
    assert stored == [["first"], ["late"]]


async def test_queued_evaluations_leave_together(stored: list[list[str]]) -> None:
    batcher = StoreBatcher(_Pool(), writers=1)  # type: ignore[arg-type]
    results = await asyncio.gather(*(batcher.store(_finished(f"s{i}")) for i in range(5)))
    assert all(r is not None for r in results)
    assert stored == [["s0", "s1", "s2", "s3", "s4"]]


async def test_two_writers_never_hold_the_same_entity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Storing locks an entity's row until commit: a writer whose batch shared an entity
    with the other's would wait for it."""
    writing: list[set[str]] = []
    overlaps: list[set[str]] = []
    sizes: list[int] = []

    async def store_batch(_conn: Any, batch: list[Finished]) -> dict[uuid.UUID, datetime]:
        keys = {done.entity_key for done in batch}
        overlaps.extend(keys & other for other in writing if keys & other)
        writing.append(keys)
        await asyncio.sleep(0.001)
        writing.remove(keys)
        sizes.append(len(batch))
        return {done.evaluation_id: datetime.now(UTC) for done in batch}

    monkeypatch.setattr(store_batcher, "store_batch", store_batch)
    batcher = StoreBatcher(_Pool(), max_batch=4, writers=2)  # type: ignore[arg-type]

    async def deliver(i: int) -> datetime | None:
        await asyncio.sleep(0.0005 * (i % 7))
        return await batcher.store(_finished(f"s{i % 5}"))

    results = await asyncio.gather(*(deliver(i) for i in range(200)))
    assert all(r is not None for r in results)
    assert not overlaps
    assert sum(sizes) == 200
    assert max(sizes) > 1
