"""Start a queued audit: fix its groups and entities, fan them out as chunk messages.

One repeatable-read transaction claims the audit, counts the member entities, streams
them through a cursor (never the whole estate in memory) into chunk messages on the
outbox, and records the totals: the chunks and the audit's state commit together.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg

from gavel.audits import ORG_TARGET, SCHEDULE_TARGET
from gavel.events import envelope
from gavel.membership import WITH_MEMBERS
from gavel.metrics import record_audit_finished
from gavel.outbox import enqueue_spread

log = logging.getLogger(__name__)
_OUTBOX_BATCH = 200
# an audit's first chunk takes partition (its id mod this, mod the partitions)
_SPREAD_STARTS = 1 << 20

_STACK_KEYS = WITH_MEMBERS + """
SELECT DISTINCT s.project || '/' || s.name AS key
FROM stack_members m JOIN stacks s ON s.id = m.stack_id
WHERE m.group_id = ANY($2::bigint[])
ORDER BY key
"""
_ACCOUNT_KEYS = WITH_MEMBERS + """
SELECT DISTINCT a.name AS key
FROM account_members m JOIN accounts a ON a.id = m.account_id
WHERE m.group_id = ANY($2::bigint[]) AND (NOT $3 OR a.scheduled_scan_enabled)
ORDER BY key
"""


class AuditTargetGone(LookupError):
    pass


async def _target_groups(conn: asyncpg.Connection, audit: asyncpg.Record) -> list[asyncpg.Record]:
    target: str = audit["target"]
    if target == ORG_TARGET:
        where, args = "mode = 'audit'", ()
    elif target == SCHEDULE_TARGET:
        where, args = "mode = 'audit' AND entity_type = 'accounts'", ()
    else:
        where, args = "id = $2", (int(target.removeprefix("group:")),)
    groups = await conn.fetch(
        f"SELECT id, name, entity_type FROM policy_groups WHERE org_id = $1 AND {where} "
        "ORDER BY name", audit["org_id"], *args)
    if not groups and target not in (ORG_TARGET, SCHEDULE_TARGET):
        raise AuditTargetGone(f"policy group '{audit['policy_group']}' no longer exists")
    return groups


async def plan_audit(pool: asyncpg.Pool, audit_id: uuid.UUID, topic: str,
                     chunk_size: int) -> None:
    """Claim the queued audit and enqueue its chunks (does nothing if it is not queued)."""
    async with pool.acquire() as conn:
        try:
            async with conn.transaction(isolation="repeatable_read"):
                ended = await _plan(conn, audit_id, topic, chunk_size)
        except AuditTargetGone as exc:
            ended = await conn.fetchval(
                "UPDATE audits SET status = 'failed', error = $2, started_at = now(), "
                "finished_at = now() WHERE id = $1 AND status = 'queued' RETURNING status",
                audit_id, str(exc))
    if ended:
        record_audit_finished(ended)


async def _plan(conn: asyncpg.Connection, audit_id: uuid.UUID, topic: str,
                chunk_size: int) -> str | None:
    """Start the audit; its status if that ends it (nothing to audit)."""
    audit = await conn.fetchrow(
        "UPDATE audits SET status = 'running', started_at = now() "
        "WHERE id = $1 AND status = 'queued' RETURNING *", audit_id)
    if audit is None:
        return None
    org = await conn.fetchrow("SELECT name, revision FROM orgs WHERE id = $1", audit["org_id"])
    groups = await _target_groups(conn, audit)
    planner = _ChunkWriter(conn, audit, org["name"], org["revision"], topic, chunk_size)
    for entity_type, query in (("stacks", _STACK_KEYS), ("accounts", _ACCOUNT_KEYS)):
        ids = [g["id"] for g in groups if g["entity_type"] == entity_type]
        if not ids:
            continue
        args: list[Any] = [audit["org_id"], ids]
        if entity_type == "accounts":
            args.append(audit["target"] == SCHEDULE_TARGET)
        async for row in conn.cursor(query, *args, prefetch=1000):
            await planner.add(entity_type.removesuffix("s"), row["key"])
        await planner.flush_entities()
    await planner.flush_outbox()
    await conn.execute(
        """UPDATE audits SET groups = $2, total = $3, chunks = $4,
               status = CASE WHEN $4 = 0 THEN 'completed' ELSE status END,
               finished_at = CASE WHEN $4 = 0 THEN now() END
           WHERE id = $1""",
        audit_id, [g["name"] for g in groups], planner.total, planner.chunks)
    log.info("audit %s started: %d entities in %d chunks (groups %s)", audit_id,
             planner.total, planner.chunks, ", ".join(g["name"] for g in groups))
    return None if planner.chunks else "completed"


class _ChunkWriter:
    def __init__(self, conn: asyncpg.Connection, audit: asyncpg.Record, org: str,
                 revision: int, topic: str, chunk_size: int) -> None:
        self._conn = conn
        self._audit = audit
        self._org = org
        self._revision = revision
        self._topic = topic
        self._chunk_size = chunk_size
        self._entity_type = ""
        self._entities: list[str] = []
        self._outbox: list[tuple[str, str, dict[str, Any], int]] = []
        # where its turn over the partitions starts: from its id, so that small audits
        # do not all begin on the first partition
        self._first_spread = audit["id"].int % _SPREAD_STARTS
        self.total = 0
        self.chunks = 0

    async def add(self, entity_type: str, key: str) -> None:
        self._entity_type = entity_type
        self._entities.append(key)
        self.total += 1
        if len(self._entities) >= self._chunk_size:
            await self.flush_entities()

    async def flush_entities(self) -> None:
        if not self._entities:
            return
        self.chunks += 1
        audit_id = str(self._audit["id"])
        value = envelope(self._org, auditId=audit_id, chunk=self.chunks,
                         entityType=self._entity_type, entities=self._entities,
                         groupRevision=self._revision)
        value["occurredAt"] = self._audit["started_at"].isoformat()
        # chunks take the topic's partitions in turn, so its workers share them evenly
        self._outbox.append((self._topic, f"{audit_id}/{self.chunks}", value,
                             self._first_spread + self.chunks - 1))
        self._entities = []
        if len(self._outbox) >= _OUTBOX_BATCH:
            await self.flush_outbox()

    async def flush_outbox(self) -> None:
        await enqueue_spread(self._conn, self._outbox)
        self._outbox = []
