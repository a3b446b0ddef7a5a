"""Several events' queries of one pack version in one OPA request.

Queries wait in one queue; at most ``max_requests`` OPA requests are in flight, and
each takes up to ``max_batch`` waiting queries of one pack version. Alone, a query
goes out at once; under load, queries queue while requests are in flight and leave
together, which saves OPA's per-request overhead and ours. A failing batch is asked
again one query at a time (all at once), so one input that breaks a policy, or takes
longer than GAVEL_OPA_TIMEOUT, fails only itself.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from worker.drainers import Drainers
from worker.opa_runtime import OpaRuntime, OpaUnavailable, PackVersion

Violations = dict[str, list[dict[str, Any]]]
Answer = tuple[Violations, str | None, float, int]


@dataclass(slots=True)
class _Query:
    pack: PackVersion
    input_doc: dict[str, Any]
    future: asyncio.Future[Answer]


class OpaBatcher:
    def __init__(self, runtime: OpaRuntime, max_requests: int = 4, max_batch: int = 32) -> None:
        self._runtime = runtime
        self._max_batch = max_batch
        self._queue: list[_Query] = []
        self._senders = Drainers(max_requests, self._send_queued)

    async def evaluate(self, pack: PackVersion, input_doc: dict[str, Any]) -> Answer:
        """(slug -> violations, decision id, request ms, inputs in that request)."""
        query = _Query(pack, input_doc, asyncio.get_running_loop().create_future())
        self._queue.append(query)
        self._senders.wake()
        return await asyncio.shield(query.future)

    async def _send_queued(self) -> None:
        while self._queue:
            batch = self._take_batch()
            try:
                await self._send(batch)
            except OpaUnavailable as exc:
                _fail(batch, exc)
            except Exception as exc:
                if len(batch) == 1:
                    _fail(batch, exc)
                    continue
                # each alone, at once: one input's failure (or a query too slow for
                # GAVEL_OPA_TIMEOUT) fails only its own event, in about one query's time
                await asyncio.gather(*(self._send_alone(query) for query in batch))

    async def _send_alone(self, query: _Query) -> None:
        try:
            await self._send([query])
        except Exception as exc:
            _fail([query], exc)

    def _take_batch(self) -> list[_Query]:
        pack_id = self._queue[0].pack.id
        batch: list[_Query] = []
        rest: list[_Query] = []
        for query in self._queue:
            if query.pack.id == pack_id and len(batch) < self._max_batch:
                batch.append(query)
            else:
                rest.append(query)
        self._queue = rest
        return batch

    async def _send(self, batch: list[_Query]) -> None:
        pack = batch[0].pack
        if len(batch) == 1:
            found, decision_id, elapsed = await self._runtime.evaluate(pack, batch[0].input_doc)
            results = [found]
        else:
            results, decision_id, elapsed = await self._runtime.evaluate_batch(
                pack, [q.input_doc for q in batch])
        for query, found in zip(batch, results, strict=True):
            if not query.future.done():
                query.future.set_result((found, decision_id, elapsed, len(batch)))


def _fail(batch: list[_Query], exc: BaseException) -> None:
    for query in batch:
        if not query.future.done():
            query.future.set_exception(exc)
