"""The OPA batcher's queue with a fake runtime (pure logic: no OPA)."""

from __future__ import annotations

import asyncio
from typing import Any

from worker.opa_batcher import OpaBatcher
from worker.opa_runtime import PackFailed, PackVersion

VERSION = PackVersion(1, (), ())


class FailingRuntime:
    """Fails every batch, and alone the inputs numbered in ``bad``, with ``error``;
    records how many inputs each request carried."""

    def __init__(self, error: Exception, bad: frozenset[int]) -> None:
        self.error, self.bad = error, bad
        self.sent: list[int] = []

    async def evaluate(self, pack: PackVersion, input_doc: dict[str, Any]
                       ) -> tuple[dict[str, Any], str | None, float]:
        self.sent.append(1)
        if input_doc["n"] in self.bad:
            raise self.error
        return {"n": input_doc["n"]}, None, 0.0

    async def evaluate_batch(self, pack: PackVersion, input_docs: list[dict[str, Any]]
                             ) -> tuple[list[dict[str, Any]], str | None, float]:
        self.sent.append(len(input_docs))
        raise self.error


async def test_a_failing_batch_fails_only_its_failing_queries() -> None:
    runtime = FailingRuntime(PackFailed("too slow"), bad=frozenset({1}))
    batcher = OpaBatcher(runtime, max_requests=1)  # type: ignore[arg-type]
    outcomes = await asyncio.gather(*(batcher.evaluate(VERSION, {"n": n}) for n in range(3)),
                                    return_exceptions=True)
    assert isinstance(outcomes[1], PackFailed)
    assert [o[0] for i, o in enumerate(outcomes) if i != 1] == [{"n": 0}, {"n": 2}]
    # the three in one batch, then each alone
    assert runtime.sent == [3, 1, 1, 1]

