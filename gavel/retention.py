"""Retention: delete finished evaluations (a trigger deletes their violations) and finished
audits older than ``GAVEL_RESULTS_RETENTION_DAYS``.

Each batch is one short statement in its own transaction, so the job never holds
many row locks or a long transaction. The latest evaluation of an entity is never
deleted, however old, nor are the other chunks of an account's latest scan, which its
current state is made of (``gavel.scan_state``): an evaluation goes only when
``latest_evaluations`` names a different one for its entity, of another scan, which
also keeps the history of an entity whose latest evaluation is not recorded there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from gavel.db import rows_touched
from gavel.evaluation_counts import counting_locks

# Batches walk (finished_at, id) upwards from where the previous one stopped, so
# the old latest evaluations that are kept are stepped over once, not per batch. The
# orgs' locks for counting their evaluations are taken first, in order (as the trigger
# counting them at commit would take them in the order the rows were deleted).
_DELETE_EVALUATIONS = f"""
WITH doomed AS MATERIALIZED (
    SELECT e.id, e.org_id, e.finished_at FROM evaluations e
    WHERE e.status = 'finished' AND e.finished_at < now() - $1::interval
      AND (e.finished_at, e.id) > ($2::timestamptz, $3::uuid)
      AND EXISTS (SELECT 1 FROM latest_evaluations l
                  WHERE l.org_id = e.org_id AND l.entity_type = e.entity_type
                    AND l.entity_key = e.entity_key AND l.evaluation_id <> e.id
                    AND NOT (e.chunks > 1 AND EXISTS (
                        SELECT 1 FROM evaluations s
                        WHERE s.id = l.evaluation_id AND s.scan_id = e.scan_id)))
    ORDER BY e.finished_at, e.id
    LIMIT $4
),
{counting_locks("doomed")}
DELETE FROM evaluations e USING doomed, locked WHERE e.id = doomed.id
RETURNING e.finished_at, e.id
"""
_DELETE_AUDITS = """
WITH doomed AS (
    SELECT id FROM audits
    WHERE status IN ('completed', 'failed')
      AND coalesce(finished_at, created_at) < now() - $1::interval
    LIMIT $2
)
DELETE FROM audits a USING doomed WHERE a.id = doomed.id
"""
_START = (datetime.fromisoformat("0001-01-01T00:00:00+00:00"),
          "00000000-0000-0000-0000-000000000000")


@dataclass(slots=True)
class Deleted:
    evaluations: int = 0
    audits: int = 0
    batches: int = 0


async def delete_expired(pool: asyncpg.Pool, older_than: timedelta, batch: int) -> Deleted:
    """Delete in batches of at most ``batch`` rows until nothing old is left."""
    deleted = Deleted()
    after = _START
    while True:
        rows = await pool.fetch(_DELETE_EVALUATIONS, older_than, *after, batch)
        deleted.batches += 1
        deleted.evaluations += len(rows)
        if len(rows) < batch:
            break
        last = max(rows, key=lambda r: (r["finished_at"], r["id"]))
        after = (last["finished_at"], last["id"])
    while True:
        status = await pool.execute(_DELETE_AUDITS, older_than, batch)
        count = rows_touched(status)
        deleted.batches += 1
        deleted.audits += count
        if count < batch:
            break
    return deleted
