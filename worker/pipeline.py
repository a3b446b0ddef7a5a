"""One message through the chain: decode -> resolve -> evaluate -> store -> publish."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from gavel.events import AccountEvent, StackEvent
from gavel.settings import Settings
from worker.dead_letters import BurstGuard, DeadLetters
from worker.decode import BadEvent, decode
from worker.evaluate import Evaluator
from worker.group_sync import GroupSync
from worker.index import ACCOUNTS, STACKS, stack_key
from worker.outcome import is_blocking, outcome_of
from worker.store import Finished, store

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer,
                 groups: GroupSync, evaluator: Evaluator, dead_letters: DeadLetters,
                 opa_version: str) -> None:
        self._settings = settings
        self._pool = pool
        self._producer = producer
        self._groups = groups
        self._evaluator = evaluator
        self._dead_letters = dead_letters
        self._burst = BurstGuard()
        self._org_ids: dict[str, int] = {}
        self.opa_version = opa_version
        self.evaluated = 0
        self.duplicates = 0

    async def handle(self, message: ConsumerRecord) -> None:
        is_account = message.topic == self._settings.kafka.topic_account_events
        try:
            event = decode(message.value, is_account)
            org_id = await self._org_id(event)
        except BadEvent as exc:
            await self._dead_letters.send(message, str(exc))
            self._burst.record(True)
            return
        self._burst.record(False)
        try:
            await self._evaluate(event, org_id)
        except BadEvent as exc:
            await self._dead_letters.send(message, str(exc))

    async def give_up(self, message: ConsumerRecord, error: str) -> None:
        await self._dead_letters.send(message, error)

    async def _org_id(self, event: StackEvent | AccountEvent) -> int:
        org_id = self._org_ids.get(event.org)
        if org_id is None:
            org_id = await self._pool.fetchval("SELECT id FROM orgs WHERE name = $1", event.org)
            if org_id is None:
                raise BadEvent(f"org: unknown organization {event.org!r}")
            self._org_ids[event.org] = org_id
        if not await self._groups.ensure_current(event.org, event.groupRevision):
            raise BadEvent(f"org: unknown organization {event.org!r}")
        return org_id

    async def _evaluate(self, event: StackEvent | AccountEvent, org_id: int) -> None:
        if isinstance(event, StackEvent):
            entity_type, key = "stack", stack_key(event.project, event.stack)
            entity = {"type": "stack", "org": event.org, "project": event.project,
                      "stack": event.stack}
            applicables = self._groups.index.resolve(event.org, STACKS, key)
        else:
            entity_type, key = "account", event.account
            entity = {"type": "account", "org": event.org, "account": event.account,
                      "provider": event.provider}
            applicables = self._groups.index.resolve(event.org, ACCOUNTS, key)
        base_input: dict[str, Any] = {
            "entity": entity, "event": {"kind": event.kind, "id": event.eventId},
            "resources": [r.model_dump() for r in event.resources]}
        packs = await self._evaluator.evaluate(applicables, base_input)
        verdicts = [p.verdict for p in packs]
        done = Finished(event=event, org_id=org_id, entity_type=entity_type, entity_key=key,
                        outcome=outcome_of(verdicts),
                        blocking=is_blocking(verdicts, event.kind, self._settings.fail_open),
                        packs=packs, opa_version=self.opa_version)
        try:
            async with self._pool.acquire() as conn:
                finished_at = await store(conn, done)
        except asyncpg.ForeignKeyViolationError:
            self._org_ids.pop(event.org, None)
            raise BadEvent(f"org: organization {event.org!r} no longer exists") from None
        if finished_at is None:
            self.duplicates += 1
            return
        self.evaluated += 1
        await self._producer.send(
            self._settings.kafka.topic_evaluations, key=f"{event.org}/{key}".encode(),
            value=orjson.dumps(_summary(done, finished_at.isoformat())))


def _summary(done: Finished, finished_at: str) -> dict[str, Any]:
    return {"schema": 1, "id": str(done.event.evaluationId), "org": done.event.org,
            "eventId": done.event.eventId, "entityType": done.entity_type,
            "entity": done.entity_key, "kind": done.event.kind, "outcome": done.outcome,
            "blocking": done.blocking, "finishedAt": finished_at,
            "violations": [{"groups": v.groups, "pack": v.pack, "policy": v.policy,
                            "level": v.level, "urn": v.urn, "message": v.message}
                           for p in done.packs for v in p.violations]}
