"""Audit chunks: re-evaluate the last known resources of a few entities, count progress.

A chunk loads its entities only once it holds a place in the worker's evaluation budget
for each (``worker.evaluation_budget``), so a worker holds at most that many audited
entities in memory, however many chunks are in flight.

Each entity's evaluation id is derived from (audit, entity), so a redelivered chunk
stores nothing twice; the chunk's counts are added to its audit once, in the
transaction that records the chunk as done.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import orjson
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from gavel.events import AuditChunk
from gavel.metrics import record_audit_finished
from worker.decode import BadEvent
from worker.evaluation_budget import EvaluationBudget
from worker.pipeline import Occasion, Pipeline, Subject

_STACKS = """
SELECT s.project, s.name, s.resources
FROM stacks s JOIN unnest($2::text[], $3::text[]) AS u(project, name)
  ON s.project = u.project AND s.name = u.name
WHERE s.org_id = $1
"""
_ACCOUNTS = """
SELECT name, provider, resources FROM accounts WHERE org_id = $1 AND name = ANY($2::text[])
"""
_COUNT_CHUNK = """
SELECT count(*) FILTER (WHERE e.outcome <> 'error') AS evaluated,
       count(*) FILTER (WHERE e.outcome = 'error') AS errored,
       (SELECT count(*) FROM violations v WHERE v.evaluation_id = ANY($2::uuid[])
          AND v.level = 'advisory' AND v.groups && a.groups) AS advisory,
       (SELECT count(*) FROM violations v WHERE v.evaluation_id = ANY($2::uuid[])
          AND v.level = 'mandatory' AND v.groups && a.groups) AS mandatory
FROM audits a LEFT JOIN evaluations e ON e.id = ANY($2::uuid[])
WHERE a.id = $1
GROUP BY a.groups
"""
_ADD_COUNTS = """
UPDATE audits SET evaluated = evaluated + $2, failed = failed + $3, advisory = advisory + $4,
       mandatory = mandatory + $5, chunks_done = chunks_done + 1,
       status = CASE WHEN chunks = chunks_done + 1 THEN 'completed' ELSE status END,
       finished_at = CASE WHEN chunks = chunks_done + 1 THEN now() ELSE finished_at END
WHERE id = $1 AND status = 'running'
RETURNING status
"""


def evaluation_id(audit_id: uuid.UUID, entity_type: str, key: str) -> uuid.UUID:
    return uuid.uuid5(audit_id, f"{entity_type}/{key}")


def decode_chunk(value: bytes | None) -> AuditChunk:
    try:
        return AuditChunk.model_validate(orjson.loads(value or b""))
    except orjson.JSONDecodeError as exc:
        raise BadEvent(f"value is not JSON: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "value"
        raise BadEvent(f"{field}: {first['msg']}") from None


class AuditChunks:
    def __init__(self, pool: asyncpg.Pool, pipeline: Pipeline,
                 budget: EvaluationBudget) -> None:
        self._pool = pool
        self._pipeline = pipeline
        self._budget = budget

    async def handle(self, message: ConsumerRecord) -> None:
        try:
            chunk = decode_chunk(message.value)
            org_id = await self._pipeline.org_id(chunk.org, chunk.groupRevision)
        except BadEvent as exc:
            await self._pipeline.give_up(message, str(exc))
            return
        status = await self._pool.fetchval("SELECT status FROM audits WHERE id = $1",
                                           chunk.auditId)
        if status != "running":
            return  # the audit was deleted or has ended
        async with self._budget.held(len(chunk.entities)):
            subjects = await self._load(chunk, org_id)
            await asyncio.gather(*(self._evaluate(chunk, subject, resources)
                                   for subject, resources in subjects))
        await self._count(chunk)

    async def give_up(self, message: ConsumerRecord, error: str) -> None:
        """A chunk that keeps failing: what was stored counts, the rest fails, the
        audit can still complete."""
        await self._pipeline.give_up(message, error)
        try:
            chunk = decode_chunk(message.value)
        except BadEvent:
            return
        await self._count(chunk)

    async def _load(self, chunk: AuditChunk,
                    org_id: int) -> list[tuple[Subject, list[dict[str, Any]]]]:
        """The chunk's entities that still exist, with their last known resources."""
        if chunk.entityType == "stack":
            projects, names = zip(*(key.split("/", 1) for key in chunk.entities), strict=True)
            rows = await self._pool.fetch(_STACKS, org_id, list(projects), list(names))
            return [(Subject.of_stack(chunk.org, org_id, r["project"], r["name"]),
                     r["resources"]) for r in rows]
        rows = await self._pool.fetch(_ACCOUNTS, org_id, chunk.entities)
        return [(Subject.of_account(chunk.org, org_id, r["name"], r["provider"]),
                 r["resources"]) for r in rows]

    async def _evaluate(self, chunk: AuditChunk, subject: Subject,
                        resources: list[dict[str, Any]]) -> None:
        occasion = Occasion(
            evaluation_id=evaluation_id(chunk.auditId, subject.entity_type, subject.key),
            event_id=f"audit:{chunk.auditId}:{subject.entity_type}:{subject.key}",
            kind="audit", occurred_at=chunk.occurredAt, audit_id=chunk.auditId)
        await self._pipeline.evaluate(subject, occasion, resources)

    async def _count(self, chunk: AuditChunk) -> None:
        ids = [evaluation_id(chunk.auditId, chunk.entityType, key) for key in chunk.entities]
        async with self._pool.acquire() as conn, conn.transaction():
            first_time = await conn.fetchval(
                "INSERT INTO audit_chunks (audit_id, chunk) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING RETURNING true", chunk.auditId, chunk.chunk)
            if not first_time:
                return
            counts = await conn.fetchrow(_COUNT_CHUNK, chunk.auditId, ids)
            if counts is None:
                return
            # an entity deleted since the audit started counts as failed
            missing = len(ids) - counts["evaluated"] - counts["errored"]
            status = await conn.fetchval(_ADD_COUNTS, chunk.auditId, counts["evaluated"],
                                         counts["errored"] + missing, counts["advisory"],
                                         counts["mandatory"])
        if status == "completed":
            record_audit_finished(status)
