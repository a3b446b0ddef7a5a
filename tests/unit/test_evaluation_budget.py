"""The budget of audited entities a worker evaluates at once."""

from __future__ import annotations

import asyncio

import pytest

from worker.evaluation_budget import EvaluationBudget


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class _Holders:
    """Tasks that each hold places of one budget until released; ``log`` records each
    grant as "name:places", in order."""

    def __init__(self, budget: EvaluationBudget) -> None:
        self.budget = budget
        self.log: list[str] = []
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._releases: dict[str, asyncio.Event] = {}

    async def ask(self, name: str, wanted: int) -> None:
        self._releases[name] = asyncio.Event()
        self.tasks[name] = asyncio.create_task(self._hold(name, wanted))
        await _settle()

    async def _hold(self, name: str, wanted: int) -> None:
        async with self.budget.held(wanted) as held:
            self.log.append(f"{name}:{held}")
            await self._releases[name].wait()

    async def release(self, *names: str) -> None:
        for name in names:
            self._releases[name].set()
        await _settle()


async def test_places_are_granted_in_the_order_asked() -> None:
    holders = _Holders(EvaluationBudget(10))
    await holders.ask("a", 6)
    await holders.ask("b", 8)
    # c would fit beside a, but b asked first and does not
    await holders.ask("c", 2)
    assert holders.log == ["a:6"]
    await holders.release("a")
    assert holders.log == ["a:6", "b:8", "c:2"]
    assert holders.budget.taken == 10
    await holders.release("b", "c")
    await asyncio.gather(*holders.tasks.values())
    assert holders.budget.taken == 0


async def test_a_chunk_bigger_than_the_budget_takes_all_of_it() -> None:
    budget = EvaluationBudget(4)
    async with budget.held(50) as held:
        assert (held, budget.taken) == (4, 4)
    assert budget.taken == 0


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    holders = _Holders(EvaluationBudget(3))
    await holders.ask("a", 3)
    await holders.ask("b", 3)
    await holders.ask("c", 1)
    holders.tasks["b"].cancel()
    with pytest.raises(asyncio.CancelledError):
        await holders.tasks.pop("b")
    await holders.release("a")
    assert holders.log == ["a:3", "c:1"]
    await holders.release("c")
    await asyncio.gather(*holders.tasks.values())
    assert holders.budget.taken == 0


def test_a_budget_needs_a_place() -> None:
    with pytest.raises(ValueError):
        EvaluationBudget(0)
