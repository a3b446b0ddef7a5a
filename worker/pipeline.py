"""One message through the chain: decode -> resolve -> evaluate -> store -> publish."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from aiokafka.structs import ConsumerRecord

from gavel.evaluations import event_id_taken, same_event
from gavel.events import AccountEvent, StackEvent
from gavel.metrics import record_evaluation
from gavel.settings import Settings
from worker.dead_letters import BurstGuard, DeadLetters
from worker.decode import BadEvent, decode
from worker.evaluate import Evaluator
from worker.group_sync import GroupSync
from worker.index import ACCOUNTS, STACKS, stack_key
from worker.outcome import is_blocking, outcome_of
from worker.publisher import Publisher
from worker.store import Finished
from worker.store_batcher import StoreBatcher

log = logging.getLogger(__name__)
# what kept an event from being stored: its evaluation, or one of its org with its eventId
_STORED_BEFORE = """
SELECT event_id, entity_type, entity_key, kind FROM evaluations
WHERE id = $1 OR (org_id = $2 AND event_id = $3)
ORDER BY id = $1 DESC LIMIT 1
"""


def stack_entity(org: str, project: str, stack: str) -> dict[str, Any]:
    """A stack as the Rego input's ``entity``."""
    return {"type": "stack", "org": org, "project": project, "stack": stack}


def rego_input(entity: dict[str, Any], kind: str, event_id: str,
               resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The input document of an evaluation, before what each pack adds to it
    (``worker.evaluate.PackPlan``)."""
    return {"entity": entity, "event": {"kind": kind, "id": event_id}, "resources": resources}


@dataclass(frozen=True, slots=True)
class Subject:
    """The stack or account an evaluation is about, as the index and the Rego input see it."""

    org: str
    org_id: int
    entity_type: str  # stack | account
    key: str          # "project/stack" or the account name
    entity: dict[str, Any]

    @classmethod
    def of_stack(cls, org: str, org_id: int, project: str, stack: str) -> Subject:
        return cls(org, org_id, "stack", stack_key(project, stack),
                   stack_entity(org, project, stack))

    @classmethod
    def of_account(cls, org: str, org_id: int, account: str, provider: str) -> Subject:
        return cls(org, org_id, "account", account,
                   {"type": "account", "org": org, "account": account, "provider": provider})


@dataclass(frozen=True, slots=True)
class Occasion:
    """Why it is evaluated: an event, or an audit re-evaluating last known resources."""

    evaluation_id: uuid.UUID
    event_id: str
    kind: str
    occurred_at: datetime
    event: StackEvent | AccountEvent | None = None
    audit_id: uuid.UUID | None = None


class Pipeline:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, publisher: Publisher,
                 groups: GroupSync, evaluator: Evaluator, dead_letters: DeadLetters,
                 opa_version: str) -> None:
        self._settings = settings
        self._pool = pool
        self._publisher = publisher
        self.groups = groups
        self._evaluator = evaluator
        self._dead_letters = dead_letters
        self._batcher = StoreBatcher(pool)
        self._burst = BurstGuard()
        self._org_ids: dict[str, int] = {}
        self.opa_version = opa_version
        self.evaluated = 0
        self.duplicates = 0

    async def handle(self, message: ConsumerRecord) -> None:
        is_account = message.topic == self._settings.kafka.topic_account_events
        try:
            event = decode(message.value, is_account)
            org_id = await self.org_id(event.org, event.groupRevision)
        except BadEvent as exc:
            await self.give_up(message, str(exc))
            self._burst.record(True)
            return
        self._burst.record(False)
        try:
            await self._evaluate_event(event, org_id)
        except BadEvent as exc:
            await self.give_up(message, str(exc))

    async def give_up(self, message: ConsumerRecord, error: str) -> None:
        await self._dead_letters.send(message, error)

    async def org_id(self, org: str, group_revision: int | None) -> int:
        """The org's id, once the group index reflects ``group_revision``."""
        org_id = self._org_ids.get(org)
        if org_id is None:
            org_id = await self._pool.fetchval("SELECT id FROM orgs WHERE name = $1", org)
            if org_id is None:
                raise BadEvent(f"org: unknown organization {org!r}")
            self._org_ids[org] = org_id
        if not await self.groups.ensure_current(org, group_revision):
            raise BadEvent(f"org: unknown organization {org!r}")
        return org_id

    async def _evaluate_event(self, event: StackEvent | AccountEvent, org_id: int) -> None:
        if isinstance(event, StackEvent):
            subject = Subject.of_stack(event.org, org_id, event.project, event.stack)
        else:
            subject = Subject.of_account(event.org, org_id, event.account, event.provider)
        occasion = Occasion(event.evaluationId, event.eventId, event.kind, event.occurredAt,
                            event=event)
        if not await self.evaluate(subject, occasion, event.resources):
            await self._check_stored_before(subject, event)

    async def _check_stored_before(self, subject: Subject,
                                   event: StackEvent | AccountEvent) -> None:
        """An event that was not stored, as an evaluation stood in its way: the same event
        delivered again, or sent again with its eventId, is done; another event reusing
        an id would be lost, and goes to the dead letters."""
        seen = await self._pool.fetchrow(_STORED_BEFORE, event.evaluationId, subject.org_id,
                                         event.eventId)
        if seen is None:  # removed by retention since
            return
        if seen["event_id"] != event.eventId:
            raise BadEvent(f"evaluationId: '{event.evaluationId}' is the evaluation of "
                           f"another event; each event needs an evaluationId of its own")
        if not same_event(seen, subject.entity_type, subject.key, event.kind):
            raise BadEvent(event_id_taken(event.eventId, seen))

    async def evaluate(self, subject: Subject, occasion: Occasion,
                       resources: list[dict[str, Any]]) -> bool:
        """Evaluate, store and publish; False when it had been stored before."""
        index_kind = STACKS if subject.entity_type == "stack" else ACCOUNTS
        applicables = self.groups.index.resolve(subject.org, index_kind, subject.key)
        packs = await self._evaluator.evaluate(applicables, rego_input(
            subject.entity, occasion.kind, occasion.event_id, resources))
        verdicts = [p.verdict for p in packs]
        event = occasion.event
        done = Finished(
            evaluation_id=occasion.evaluation_id, event_id=occasion.event_id,
            org_id=subject.org_id, entity_type=subject.entity_type, entity_key=subject.key,
            kind=occasion.kind, occurred_at=occasion.occurred_at,
            resource_count=len(resources), outcome=outcome_of(verdicts),
            blocking=is_blocking(verdicts, occasion.kind, self._settings.fail_open),
            packs=packs, opa_version=self.opa_version, event=event, audit_id=occasion.audit_id,
            scan=(event.scanId, event.chunk, event.chunks)
            if isinstance(event, AccountEvent) else None)
        try:
            finished_at = await self._batcher.store(done)
        except asyncpg.ForeignKeyViolationError:
            self._org_ids.pop(subject.org, None)
            raise BadEvent(f"org: organization {subject.org!r} no longer exists") from None
        if finished_at is None:
            self.duplicates += 1
            return False
        self.evaluated += 1
        record_evaluation(done.outcome, done.entity_type, done.kind, done.occurred_at)
        await self._publisher.send(
            self._settings.kafka.topic_evaluations,
            key=f"{subject.org}/{subject.key}".encode(),
            value=summary_message(subject.org, done, finished_at.isoformat(),
                                  self._settings.kafka.max_message_bytes))
        return True


def summary_message(org: str, done: Finished, finished_at: str, max_bytes: int) -> bytes:
    """The finished evaluation for ``gavel.evaluations``; over ``max_bytes`` with its
    violations, without them (``violationsOmitted`` counts them: the API has them)."""
    summary = _summary(org, done, finished_at)
    value = orjson.dumps(summary)
    if len(value) > max_bytes:
        summary["violationsOmitted"] = len(summary["violations"])
        summary["violations"] = []
        value = orjson.dumps(summary)
    return value


def _summary(org: str, done: Finished, finished_at: str) -> dict[str, Any]:
    return {"schema": 1, "id": str(done.evaluation_id), "org": org,
            "eventId": done.event_id, "entityType": done.entity_type,
            "entity": done.entity_key, "kind": done.kind, "outcome": done.outcome,
            "blocking": done.blocking, "finishedAt": finished_at,
            "auditId": str(done.audit_id) if done.audit_id else None,
            "violations": [{"groups": v.groups, "pack": v.pack, "policy": v.policy,
                            "level": v.level, "urn": v.urn, "message": v.message}
                           for p in done.packs for v in p.violations]}
