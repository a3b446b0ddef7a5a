"""The budget of audited entities a worker evaluates at once."""

from __future__ import annotations

import asyncio

import pytest

from worker.evaluation_budget import EvaluationBudget


async def _hold(budget: EvaluationBudget, wanted: int, log: list[str], name: str,
                release: asyncio.Event) -> None:
    async with budget.held(wanted) as held:
        log.append(f"{name}:{held}")
        await release.wait()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_places_are_granted_in_the_order_asked() -> None:
    budget = EvaluationBudget(10)
    log: list[str] = []
    releases = {name: asyncio.Event() for name in "abc"}
    a = asyncio.create_task(_hold(budget, 6, log, "a", releases["a"]))
    await _settle()
    b = asyncio.create_task(_hold(budget, 8, log, "b", releases["b"]))
    await _settle()
    # c would fit beside a, but b asked first and does not
    c = asyncio.create_task(_hold(budget, 2, log, "c", releases["c"]))
    await _settle()
    assert log == ["a:6"]
    releases["a"].set()
    await _settle()
    assert log == ["a:6", "b:8", "c:2"]
    assert budget.taken == 10
    releases["b"].set()
    releases["c"].set()
    await asyncio.gather(a, b, c)
    assert budget.taken == 0


async def test_a_chunk_bigger_than_the_budget_takes_all_of_it() -> None:
    budget = EvaluationBudget(4)
    async with budget.held(50) as held:
        assert (held, budget.taken) == (4, 4)
    assert budget.taken == 0


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    budget = EvaluationBudget(3)
    log: list[str] = []
    releases = {name: asyncio.Event() for name in "abc"}
    a = asyncio.create_task(_hold(budget, 3, log, "a", releases["a"]))
    await _settle()
    b = asyncio.create_task(_hold(budget, 3, log, "b", releases["b"]))
    c = asyncio.create_task(_hold(budget, 1, log, "c", releases["c"]))
    await _settle()
    b.cancel()
    with pytest.raises(asyncio.CancelledError):
        await b
    releases["a"].set()
    await _settle()
    assert log == ["a:3", "c:1"]
    releases["c"].set()
    await asyncio.gather(a, c)
    assert budget.taken == 0


def test_a_budget_needs_a_place() -> None:
    with pytest.raises(ValueError):
        EvaluationBudget(0)
