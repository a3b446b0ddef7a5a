"""An open-loop load generator: requests start on a fixed schedule, whether or not
earlier ones have been answered, so a slow server shows as latency, not as a lower
request rate.

Each request is one decision: POST the stack event, then long-poll its evaluation
until it is finished. Latency runs from the POST being sent to the long-poll answer.
The client's wall clock at the POST and at the answer, against the evaluation's own
``receivedAt`` and ``finishedAt`` (the store transaction's start; same machine, same
clock), split it into the time before the API accepted the event and the time from
the store to the answer (store commit, notification, long-poll reply).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp

from bench.gavel_client import GavelClient, NotFinished, UnexpectedAnswer


@dataclass(frozen=True)
class Decision:
    project: str
    stack: str
    resources: list[dict[str, Any]]


@dataclass
class PhaseResult:
    rate: float
    latencies_ms: list[float] = field(default_factory=list)
    send_lag_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    # "sent -> accepted", "stored -> answered": ms per decision, from the two clocks
    stages_ms: dict[str, list[float]] = field(default_factory=dict)
    send_seconds: float = 0.0
    total_seconds: float = 0.0

    def stage(self, name: str, began: float, ended: float) -> None:
        self.stages_ms.setdefault(name, []).append((ended - began) * 1000)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    @property
    def sent(self) -> int:
        return len(self.send_lag_ms)


async def run_phase(client: GavelClient, rate: float, decisions: list[Decision],
                    timeout: float) -> PhaseResult:
    """Start one decision every ``1/rate`` seconds; return when all are answered."""
    result = PhaseResult(rate)
    began = time.perf_counter()
    tasks = []
    for index, decision in enumerate(decisions):
        scheduled = began + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_decide(client, decision, scheduled, timeout, result)))
    result.send_seconds = time.perf_counter() - began
    await asyncio.gather(*tasks)
    result.total_seconds = time.perf_counter() - began
    return result


async def _decide(client: GavelClient, decision: Decision, scheduled: float,
                  timeout: float, result: PhaseResult) -> None:
    sent = time.perf_counter()
    sent_wall = time.time()
    result.send_lag_ms.append((sent - scheduled) * 1000)
    try:
        evaluation_id = await client.post_event(decision.project, decision.stack, "preview",
                                                decision.resources)
        document = await client.finished_evaluation(evaluation_id, timeout)
    except UnexpectedAnswer as exc:
        result.error(f"HTTP {exc.status}")
        return
    except NotFinished:
        result.error("not finished in time")
        return
    except TimeoutError:
        result.error("HTTP request timed out")
        return
    except aiohttp.ClientError as exc:
        result.error(type(exc).__name__)
        return
    result.latencies_ms.append((time.perf_counter() - sent) * 1000)
    answered_wall = time.time()
    result.stage("sent -> accepted", sent_wall, _epoch(document["receivedAt"]))
    result.stage("stored -> answered", _epoch(document["finishedAt"]), answered_wall)
    outcome = str(document["outcome"])
    result.outcomes[outcome] = result.outcomes.get(outcome, 0) + 1


def _epoch(timestamp: object) -> float:
    return datetime.fromisoformat(str(timestamp)).timestamp()
