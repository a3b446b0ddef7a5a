"""Evaluations: accepted as pending (with their outbox event), read back as documents."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from gavel.domain_errors import ConflictError, InvalidError
from gavel.events import envelope
from gavel.outbox import CHANNEL as OUTBOX_CHANNEL

# notified with an evaluation's id when it is stored finished (worker.store); the API's
# long-polls listen on it
FINISHED_CHANNEL = "gavel_evaluation"

# One statement, so one round trip and atomic without a transaction: register the
# stack (for stack events), insert the pending evaluation unless its event id was
# seen, and only then queue its event, stamped with the org's group revision. The
# relay is woken only for rows it may publish at once ($17: seconds it must wait).
_ACCEPT = f"""
WITH registered AS (
    INSERT INTO stacks (org_id, project, name)
    SELECT $1, $12::text, $13::text WHERE $12::text IS NOT NULL
    ON CONFLICT (org_id, project, name) DO NOTHING),
accepted AS (
    INSERT INTO evaluations (id, org_id, event_id, entity_type, entity_key, kind, status,
                             resource_count, scan_id, chunk, chunks, occurred_at)
    VALUES ($2, $1, $3, $4, $5, $6, 'pending', $7, $8, $9, $10, $11)
    ON CONFLICT (org_id, event_id) DO NOTHING RETURNING id),
queued AS (
    INSERT INTO outbox (topic, key, value, publish_after)
    SELECT $14, $15, $16::jsonb || jsonb_build_object('groupRevision', o.revision),
           CASE WHEN $17::float8 > 0 THEN now() + make_interval(secs => $17::float8) END
    FROM accepted CROSS JOIN orgs o WHERE o.id = $1
    RETURNING id, (value ->> 'groupRevision')::bigint AS revision)
SELECT (SELECT id FROM accepted) AS id, queued.id AS outbox_id, queued.revision,
       CASE WHEN $17::float8 = 0 THEN pg_notify('{OUTBOX_CHANNEL}', '') END
FROM (SELECT 1) AS one LEFT JOIN queued ON true
"""


@dataclass(frozen=True)
class Accepted:
    """An accepted event: its evaluation, and the outbox row queued for it (none when
    the event id had been seen before)."""

    evaluation_id: uuid.UUID
    status: str
    topic: str
    key: str
    value: dict[str, Any]
    outbox_id: int | None


async def accept_event(db: asyncpg.Connection | asyncpg.Pool, *, org_id: int, org: str,
                       topic: str, key: str, entity_type: str, entity_key: str, kind: str,
                       event_id: str | None, fields: dict[str, Any],
                       scan: tuple[str, int, int] | None = None,
                       stack: tuple[str, str] | None = None,
                       publish_after: float = 0.0,
                       max_message_bytes: int | None = None) -> Accepted:
    """Record a pending evaluation and enqueue its event; ``stack`` (project, name) is
    registered on the way, and the relay leaves the row alone for ``publish_after``
    seconds (its sender publishes it meanwhile). The same ``event_id`` again returns
    the first evaluation and enqueues nothing, or raises ``ConflictError`` if it was
    another entity's or another kind of event. An event larger than
    ``max_message_bytes`` as JSON, which Kafka would refuse, is refused here
    (``InvalidError``) and nothing is written.
    """
    value = envelope(org, **fields)
    if event_id:
        value["eventId"] = event_id
    evaluation_id = uuid.uuid4()
    value["evaluationId"] = str(evaluation_id)
    if max_message_bytes is not None:
        _check_size(value, max_message_bytes)
    row = await db.fetchrow(
        _ACCEPT, org_id, evaluation_id, value["eventId"], entity_type, entity_key, kind,
        len(fields.get("resources", [])), *(scan or (None, None, None)),
        datetime.fromisoformat(value["occurredAt"]), *(stack or (None, None)), topic, key,
        value, publish_after)
    if row["id"] is None:
        seen = await db.fetchrow(
            "SELECT id, status, entity_type, entity_key, kind FROM evaluations "
            "WHERE org_id = $1 AND event_id = $2", org_id, value["eventId"])
        if not same_event(seen, entity_type, entity_key, kind):
            # the id names another event: answering with that one's evaluation would
            # hand a CI gate another stack's outcome
            raise ConflictError(event_id_taken(value["eventId"], seen))
        return Accepted(seen["id"], seen["status"], topic, key, value, None)
    value["groupRevision"] = row["revision"]
    return Accepted(evaluation_id, "pending", topic, key, value, row["outbox_id"])


def same_event(seen: asyncpg.Record, entity_type: str, entity_key: str, kind: str) -> bool:
    """Whether a stored evaluation (its entity_type, entity_key and kind) is of the event
    described: the same eventId sent again, not another event reusing it."""
    return (seen["entity_type"], seen["entity_key"], seen["kind"]) == (
        entity_type, entity_key, kind)


def event_id_taken(event_id: str, seen: asyncpg.Record) -> str:
    """Why an event reusing the eventId of another (``seen``) is refused."""
    return (f"eventId: '{event_id}' was sent before for the {seen['entity_type']} "
            f"'{seen['entity_key']}' ({seen['kind']}); an eventId names one event of "
            f"the organization")


# what the relay adds to an event (its org's group revision), at most
_REVISION_ROOM = len(b',"groupRevision":') + 20


def _check_size(value: dict[str, Any], max_message_bytes: int) -> None:
    size = len(orjson.dumps(value)) + _REVISION_ROOM
    if size > max_message_bytes:
        raise InvalidError(
            f"resources: the event would be {size} bytes as JSON, over the limit of "
            f"{max_message_bytes} bytes of a Kafka message; send fewer or smaller resources")


def entity_view(row: asyncpg.Record, org: str) -> dict[str, Any]:
    if row["entity_type"] == "stack":
        project, _, stack = row["entity_key"].partition("/")
        return {"type": "stack", "org": org, "project": project, "stack": stack}
    return {"type": "account", "org": org, "account": row["entity_key"]}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# The evaluation and, once it is finished, its violations: one round trip. They are
# listed as a CI log would want them, the mandatory ones (those that block) first, then
# by pack, policy and URN (a violation of the stack as a whole, without one, first).
_EVALUATION = """
SELECT e.*, CASE WHEN e.status = 'finished' THEN (
    SELECT json_agg(json_build_object(
               'groups', v.groups, 'pack', v.pack, 'packVersion', v.pack_version,
               'versionTag', v.version_tag, 'policy', v.policy, 'level', v.level,
               'urn', v.urn, 'message', v.message, 'details', v.details)
           ORDER BY v.level <> 'mandatory', v.pack, v.policy, v.urn NULLS FIRST, v.id)
    FROM violations v WHERE v.evaluation_id = e.id) END AS violation_list
FROM evaluations e WHERE e.id = $1 AND e.org_id = $2
"""


async def load_evaluation(pool: asyncpg.Pool, org_id: int, org: str,
                          evaluation_id: uuid.UUID) -> dict[str, Any] | None:
    row = await pool.fetchrow(_EVALUATION, evaluation_id, org_id)
    if row is None:
        return None
    violations = row["violation_list"]
    document: dict[str, Any] = {
        "id": str(row["id"]), "eventId": row["event_id"], "entity": entity_view(row, org),
        "kind": row["kind"], "status": row["status"], "outcome": row["outcome"],
        "blocking": row["blocking"], "resourceCount": row["resource_count"],
        "receivedAt": _iso(row["received_at"]), "occurredAt": _iso(row["occurred_at"]),
        "finishedAt": _iso(row["finished_at"]), "opaVersion": row["opa_version"],
        "packs": row["packs"],
        "violations": violations or [],
    }
    if row["scan_id"] is not None:
        document.update(scanId=row["scan_id"], chunk=row["chunk"], chunks=row["chunks"])
    if row["audit_id"] is not None:
        document["auditId"] = str(row["audit_id"])
    return document


async def latest_evaluation(pool: asyncpg.Pool, org_id: int, org: str, entity_type: str,
                            entity_key: str) -> dict[str, Any] | None:
    """The entity's most recently finished evaluation, as a document."""
    evaluation_id = await pool.fetchval(
        """SELECT id FROM evaluations WHERE org_id = $1 AND entity_type = $2
           AND entity_key = $3 AND status = 'finished' ORDER BY finished_at DESC LIMIT 1""",
        org_id, entity_type, entity_key)
    if evaluation_id is None:
        return None
    return await load_evaluation(pool, org_id, org, evaluation_id)
