"""The evaluation consumer loop: poll, hand messages on, react to rebalances.

Work runs as tasks capped by ``GAVEL_WORKER_CONCURRENCY``. When the cap is reached the
loop waits for a task to finish before it polls again; what the consumer fetched
meanwhile (one fetch per partition) stays buffered. Only when no task finishes for
SATURATED_WAIT seconds are the assigned partitions paused, so that polling goes on
(the group would otherwise drop a worker that stops polling): pausing discards the
buffered records, which are fetched again on resume. Offsets are committed only
up to the lowest message still in flight, i.e. only what is stored in Postgres, and at
most every COMMIT_INTERVAL seconds (and on revocation and shutdown): a commit per
message would cost the broker about as much as the message itself. After a crash the
messages stored since the last commit come again, and are recognised as stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from gavel.metrics import record_consumed
from worker.consumer_lag import report_lag
from worker.dead_letters import DeadLetterBurst
from worker.offsets import OffsetTracker

log = logging.getLogger(__name__)
Handler = Callable[[ConsumerRecord], Awaitable[None]]
FailedHandler = Callable[[ConsumerRecord, str], Awaitable[None]]
COMMIT_INTERVAL = 0.2
SATURATED_WAIT = 1.0


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, loop: EvaluationLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._loop.release(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("assigned %s", sorted(f"{tp.topic}:{tp.partition}" for tp in assigned))


class EvaluationLoop:
    def __init__(self, consumer: AIOKafkaConsumer, topics: list[str], handle: Handler,
                 give_up: FailedHandler, concurrency: int, shutdown_timeout: float,
                 attempts: int = 5, lag_interval: float = 5.0) -> None:
        self._consumer = consumer
        self._topics = topics
        self._handle = handle
        self._give_up = give_up
        self._concurrency = concurrency
        self._shutdown_timeout = shutdown_timeout
        self._attempts = attempts
        self._lag_interval = lag_interval
        self._offsets = OffsetTracker()
        self._tasks: dict[asyncio.Task[None], TopicPartition] = {}
        self._task_finished = asyncio.Event()
        self._fatal: BaseException | None = None
        self.finished = self.failed = 0

    async def run(self, stop: asyncio.Event) -> None:
        self._consumer.subscribe(self._topics, listener=_Rebalance(self))
        paused = False
        last_commit = 0.0
        lag_reporter = asyncio.create_task(report_lag(self._consumer, self._lag_interval),
                                           name="consumer-lag")
        try:
            while not stop.is_set():
                if self._fatal is not None:
                    raise self._fatal
                room = self._concurrency - len(self._tasks)
                if room <= 0:
                    room = await self._wait_for_room()
                if (room <= 0) != paused:
                    assignment = self._consumer.assignment()
                    (self._consumer.resume if paused else self._consumer.pause)(*assignment)
                    paused = not paused
                batch = await self._consumer.getmany(timeout_ms=100, max_records=max(1, room))
                for tp, messages in batch.items():
                    for message in messages:
                        self._start(tp, message)
                if time.monotonic() - last_commit >= COMMIT_INTERVAL:
                    await self.commit()
                    last_commit = time.monotonic()
        finally:
            lag_reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag_reporter
            await self._drain()

    async def _wait_for_room(self) -> int:
        """Free places once a task finishes, or 0 after SATURATED_WAIT seconds."""
        # one event that every task's end sets: waiting on the tasks themselves would
        # add and remove a callback on each of them per message
        self._task_finished.clear()
        if len(self._tasks) >= self._concurrency:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SATURATED_WAIT):
                    await self._task_finished.wait()
        return max(0, self._concurrency - len(self._tasks))

    def _start(self, tp: TopicPartition, message: ConsumerRecord) -> None:
        record_consumed(message.topic)
        self._offsets.started(tp, message.offset)
        task = asyncio.create_task(self._process(message))
        self._tasks[task] = tp
        task.add_done_callback(lambda t, m=message: self._done(t, m))

    def _done(self, task: asyncio.Task[None], message: ConsumerRecord) -> None:
        tp = self._tasks.pop(task)
        self._task_finished.set()
        if task.cancelled():
            return  # not finished: stays uncommitted and is redelivered
        if task.exception() is not None:
            self._fatal = task.exception()
            return
        self._offsets.finished(tp, message.offset)

    async def _process(self, message: ConsumerRecord) -> None:
        delay = 0.2
        for attempt in range(1, self._attempts + 1):
            try:
                await self._handle(message)
                self.finished += 1
                return
            except DeadLetterBurst:
                raise
            except Exception as exc:
                if attempt == self._attempts:
                    log.exception("giving up on %s:%d@%d", message.topic, message.partition,
                                  message.offset)
                    self.failed += 1
                    await self._give_up(message, f"processing failed: {exc!r}")
                    return
                log.warning("processing %s:%d@%d failed (%r); retry %d in %.1fs",
                            message.topic, message.partition, message.offset, exc, attempt,
                            delay)
                await asyncio.sleep(delay)
                delay *= 2

    async def commit(self, only: set[TopicPartition] | None = None) -> None:
        offsets = self._offsets.to_commit(only)
        if offsets:
            await self._consumer.commit(offsets)
            self._offsets.committed(offsets)

    async def release(self, revoked: set[TopicPartition]) -> None:
        """On revocation: finish what is in flight for those partitions (bounded), commit."""
        waiting = [t for t, tp in self._tasks.items() if tp in revoked]
        if waiting:
            _, late = await asyncio.wait(waiting, timeout=self._shutdown_timeout)
            for task in late:
                task.cancel()
        try:
            await self.commit(revoked)
        except Exception as exc:
            log.warning("commit on revocation failed (%r); the work will be redelivered", exc)
        self._offsets.forget(revoked)

    async def _drain(self) -> None:
        tasks = list(self._tasks)
        late: set[asyncio.Task[None]] = set()
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self._shutdown_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        try:
            await self.commit()
        except Exception as exc:
            log.warning("final commit failed (%r); unfinished work will be redelivered", exc)
        log.info("evaluation loop stopped: %d finished, %d failed, %d abandoned",
                 self.finished, self.failed, len(late))
