"""Write finished evaluations: idempotent on the evaluation id, a batch per transaction.

Besides the history (``evaluations``, ``violations``) the same transaction keeps each
entity's current state: ``latest_evaluations`` points at its newest evaluation (by
event time) and ``current_violations`` holds a copy of that evaluation's violations
(and of the other chunks' of an account's scan sent in chunks: ``gavel.scan_state``).
The row lock on ``latest_evaluations`` serializes two writers of one entity. The
current state, with the compliance counts it adds up to, is replaced by
``gavel.compliance_summary``; the org-wide counts are written last, and then the counts of
evaluations received (``gavel.evaluation_counts``), of those the batch inserted: a
statement adds a batch's rows to each count at once. The statement that
stores an evaluation also announces it on FINISHED_CHANNEL (delivered at commit), which
long-polls of the API wait for.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg
import orjson

from gavel import compliance_summary, entity_blocks, evaluation_counts, scan_state
from gavel.db import columns, transaction_by_key
from gavel.evaluations import FINISHED_CHANNEL
from gavel.events import AccountEvent, StackEvent
from worker.evaluate import PackResult

_EVALUATION_ROWS = """
unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
       $8::bool[], $9::text[], $10::text[], $11::int[], $12::text[], $13::int[], $14::int[],
       $15::uuid[], $16::timestamptz[])
AS u(id, org_id, event_id, entity_type, entity_key, kind, outcome, blocking, packs, opa_version,
     resource_count, scan_id, chunk, chunks, audit_id, occurred_at)
"""
_VIOLATION_ROWS = """
unnest($17::uuid[], $18::text[], $19::text[], $20::int[], $21::text[], $22::text[],
       $23::text[], $24::text[], $25::text[], $26::text[])
AS v(evaluation_id, groups, pack, pack_version, version_tag, policy, level, urn, message,
     details)
"""
# One statement finishes the pending evaluations (accepted over HTTP), inserts the others
# (straight off Kafka, audits), inserts the violations of those it stored, and points
# each entity's latest evaluation at the newest it stored (by event time; a batch may
# hold several evaluations of one entity). An evaluation that exists already, pending
# or not, conflicts and is left to the UPDATE, whatever order the two run in; one
# stored before is neither updated nor inserted. The entities' current state is
# replaced by the next statement, whose snapshot sees what another writer of one of
# them committed while this one waited for its row of latest_evaluations.
_STORE_FINISHED = f"""
WITH u AS (SELECT * FROM {_EVALUATION_ROWS}),
finished AS (
    UPDATE evaluations e
    SET status = 'finished', outcome = u.outcome, blocking = u.blocking,
        packs = u.packs::jsonb, opa_version = u.opa_version, finished_at = now(),
        resource_count = u.resource_count
    FROM u WHERE e.id = u.id AND e.status = 'pending'
    RETURNING e.id, e.org_id, e.entity_type, e.entity_key, e.kind, e.occurred_at,
              e.finished_at, e.received_at),
inserted AS (
    INSERT INTO evaluations (id, org_id, event_id, entity_type, entity_key, kind, status,
                             outcome, blocking, packs, opa_version, finished_at,
                             resource_count, scan_id, chunk, chunks, audit_id, occurred_at)
    SELECT id, org_id, event_id, entity_type, entity_key, kind, 'finished', outcome,
           blocking, packs::jsonb, opa_version, now(), resource_count, scan_id, chunk,
           chunks, audit_id, occurred_at
    FROM u
    ON CONFLICT DO NOTHING
    RETURNING id, org_id, entity_type, entity_key, kind, occurred_at, finished_at,
              received_at),
stored AS (SELECT *, false AS inserted FROM finished
           UNION ALL SELECT *, true FROM inserted),
found AS (
    INSERT INTO violations (evaluation_id, org_id, entity_type, entity_key, groups, pack,
                            pack_version, version_tag, policy, level, urn, message, details,
                            observed_at)
    SELECT v.evaluation_id, u.org_id, u.entity_type, u.entity_key,
           string_to_array(v.groups, ','), v.pack, v.pack_version,
           v.version_tag, v.policy, v.level, v.urn, v.message, v.details::jsonb,
           s.finished_at
    FROM {_VIOLATION_ROWS}
         JOIN stored s ON s.id = v.evaluation_id JOIN u ON u.id = v.evaluation_id),
advanced AS (
    INSERT INTO latest_evaluations AS l (org_id, entity_type, entity_key, evaluation_id,
                                         occurred_at, finished_at)
    SELECT DISTINCT ON (org_id, entity_type, entity_key)
           org_id, entity_type, entity_key, id, occurred_at, finished_at
    FROM stored
    ORDER BY org_id, entity_type, entity_key, occurred_at DESC, finished_at DESC
    ON CONFLICT (org_id, entity_type, entity_key) DO UPDATE
    SET evaluation_id = EXCLUDED.evaluation_id, occurred_at = EXCLUDED.occurred_at,
        finished_at = EXCLUDED.finished_at
    WHERE (l.occurred_at, l.finished_at) <= (EXCLUDED.occurred_at, EXCLUDED.finished_at)
    RETURNING l.evaluation_id)
SELECT s.id, s.finished_at, a.evaluation_id IS NOT NULL AS advanced, s.inserted, s.org_id,
       s.received_at, s.entity_type, s.kind, pg_notify($27, s.id::text)
FROM stored s LEFT JOIN advanced a ON a.evaluation_id = s.id
"""


@dataclass(slots=True)
class Finished:
    """An evaluated event (``event``) or audited entity (``audit_id``), ready to store."""

    evaluation_id: uuid.UUID
    event_id: str
    org_id: int
    entity_type: str
    entity_key: str
    kind: str
    occurred_at: datetime
    resource_count: int
    outcome: str
    blocking: bool
    packs: list[PackResult]
    opa_version: str
    # the event whose resources become the entity's last known ones (None for audits)
    event: StackEvent | AccountEvent | None = None
    audit_id: uuid.UUID | None = None
    scan: tuple[str, int, int] | None = field(default=None)


async def store_batch(conn: asyncpg.Connection, batch: list[Finished],
                      split_limit: int = entity_blocks.SPLIT_LIMIT) -> dict[uuid.UUID, datetime]:
    """Store the evaluations; return the finish time of those not stored before. The
    transaction holds the orgs' locks shared (``gavel.entity_blocks``); once it is
    committed, blocks of entities it filled past ``split_limit`` are split."""
    unique = {done.evaluation_id: done for done in batch}
    # in the order of orgs and entities: every store takes its row locks in one order,
    # and the trigger counting evaluations takes the orgs' locks in the order of the
    # rows inserted (migration 0016)
    items = sorted(unique.values(), key=lambda d: (d.org_id, d.entity_type, d.entity_key))
    full: list[entity_blocks.Block] = []
    async with transaction_by_key(conn, entity_blocks.shared_locks_sql(
            done.org_id for done in items) + evaluation_counts.COUNTED_BY_STATEMENT):
        stored = await _store_finished(conn, items)
        new = [done for done in items if done.evaluation_id in stored.finished_at]
        if not new:
            return stored.finished_at
        change = await _replace_current_state(conn, new, stored.advanced)
        await _remember_resources(conn, [d for d in new if d.event is not None])
        if change:
            full = await compliance_summary.add(conn, change, split_limit)
        await evaluation_counts.add_inserted(conn, stored.inserted)
    if full:
        await entity_blocks.split_all(conn, full, split_limit)
    return stored.finished_at


async def _replace_current_state(conn: asyncpg.Connection, new: list[Finished],
                                 advanced: set[uuid.UUID]) -> compliance_summary.Changes:
    """Replace the current state of the entities whose latest evaluation is new, and of
    the accounts whose latest scan a new chunk belongs to (``gavel.scan_state``)."""
    latest = {(d.org_id, d.entity_type, d.entity_key): [d.evaluation_id]
              for d in new if d.evaluation_id in advanced}
    chunked = [(d.org_id, d.entity_key, d.scan[0]) for d in new
               if d.scan is not None and d.scan[2] > 1]
    for (org_id, account), chunks in (await scan_state.current_chunks(conn, chunked)).items():
        latest[(org_id, "account", account)] = chunks
    entities = sorted(latest)
    return await compliance_summary.replace_current_state(
        conn, entities, [i for entity in entities for i in latest[entity]])


class _Stored(NamedTuple):
    """What storing a batch's evaluations did: the finish times of those not stored before,
    which of them are now their entity's latest, and those inserted (not accepted over
    HTTP before, so not counted yet)."""

    finished_at: dict[uuid.UUID, datetime]
    advanced: set[uuid.UUID]
    inserted: list[evaluation_counts.Received]


async def _store_finished(conn: asyncpg.Connection, items: list[Finished]) -> _Stored:
    """Store the evaluations not stored before, with their violations."""
    # JSON as text: a list per element would read as a dimension of a jsonb[] array.
    # A violation's groups, a list of its own, go as one text joined by commas, which
    # group names cannot hold (gavel.entity_names): splitting it costs Postgres a fifth
    # of reading the list from JSON.
    provenance = [_json([p.provenance(d.opa_version) for p in d.packs]) for d in items]
    scans = [d.scan or (None, None, None) for d in items]
    found = [(d.evaluation_id, v) for d in items for pack in d.packs for v in pack.violations]
    rows = await conn.fetch(
        _STORE_FINISHED, [d.evaluation_id for d in items], [d.org_id for d in items],
        [d.event_id for d in items], [d.entity_type for d in items],
        [d.entity_key for d in items], [d.kind for d in items], [d.outcome for d in items],
        [d.blocking for d in items], provenance, [d.opa_version for d in items],
        [d.resource_count for d in items], [s[0] for s in scans], [s[1] for s in scans],
        [s[2] for s in scans], [d.audit_id for d in items], [d.occurred_at for d in items],
        [i for i, _ in found], [",".join(v.groups) for _, v in found], [v.pack for _, v in found],
        [v.pack_version for _, v in found], [v.version_tag for _, v in found],
        [v.policy for _, v in found], [v.level for _, v in found], [v.urn for _, v in found],
        [v.message for _, v in found],
        [None if v.details is None else _json(v.details) for _, v in found], FINISHED_CHANNEL)
    return _Stored({row["id"]: row["finished_at"] for row in rows},
                   {row["id"] for row in rows if row["advanced"]},
                   [evaluation_counts.Received(row["org_id"], row["received_at"],
                                               row["entity_type"], row["kind"])
                    for row in rows if row["inserted"]])


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


# Each stack of a batch once (a row per key): with $4 NULL it keeps the resources it has
# (a new stack has none), else they become $4 (JSON text, stored as json: checked, not
# converted, since only audits read it back whole) and their count $5.
_REMEMBER_STACKS = """
WITH u AS (
    SELECT org_id, project, name, resources::json AS resources, resources IS NULL AS keep,
           resource_count
    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[])
         AS u(org_id, project, name, resources, resource_count)),
kept AS (
    INSERT INTO stacks (org_id, project, name)
    SELECT org_id, project, name FROM u WHERE keep
    ON CONFLICT (org_id, project, name) DO UPDATE SET updated_at = now())
INSERT INTO stacks (org_id, project, name, resources, resource_count)
SELECT org_id, project, name, resources, resource_count
FROM u WHERE NOT keep
ON CONFLICT (org_id, project, name) DO UPDATE
SET resources = EXCLUDED.resources, resource_count = EXCLUDED.resource_count,
    updated_at = now()
"""


async def _remember_resources(conn: asyncpg.Connection, new: list[Finished]) -> None:
    """Keep each entity's last known resources, for audits."""
    # per stack: its resources after the batch's last deployment (None: none deployed)
    stacks: dict[tuple[int, str, str], list[Any] | None] = {}
    accounts: list[tuple[Any, ...]] = []
    for done in new:
        event = done.event
        if isinstance(event, StackEvent):
            # a preview proposes resources; only a deployment changes what is there
            key = (done.org_id, event.project, event.stack)
            if event.kind != "preview":
                stacks[key] = [] if event.kind == "destroy" else event.resources
            else:
                stacks.setdefault(key, None)
        elif isinstance(event, AccountEvent):
            accounts.append((done.org_id, event.account, event.chunk, event.resources,
                             event.scanId, event.chunks))
    if stacks:
        org_ids, projects, names = columns(list(stacks), 3)
        resources = list(stacks.values())
        await conn.execute(_REMEMBER_STACKS, org_ids, projects, names,
                           [None if r is None else _json(r) for r in resources],
                           [None if r is None else len(r) for r in resources])
    if accounts:
        # the first chunk of a scan replaces what the account had; later chunks add to it
        await conn.executemany(
            """UPDATE accounts SET
                   resources = CASE WHEN $3 = 1 THEN $4::jsonb ELSE resources || $4::jsonb END,
                   resource_count = CASE WHEN $3 = 1 THEN jsonb_array_length($4::jsonb)
                                         ELSE resource_count + jsonb_array_length($4::jsonb)
                                    END,
                   scan_status = jsonb_build_object('scanId', $5::text, 'chunk', $3::int,
                                                    'chunks', $6::int, 'finishedAt', now()),
                   updated_at = now()
               WHERE org_id = $1 AND name = $2""", accounts)
