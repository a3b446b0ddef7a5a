"""An account's current state is its latest scan: every chunk of it.

A scan sent in chunks is evaluated chunk by chunk, an evaluation each, and the latest
evaluation of the account (``latest_evaluations``) is one chunk's. Its current
violations and pack runs (``gavel.compliance_summary``) are those of the newest
evaluation of each chunk of that scan, so the lists and the compliance counts cover the
whole scan once its last chunk is stored, and the chunks stored so far while it is
under way, as its stored resources do (the first chunk of a scan replaces them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import asyncpg


def chunks_of_latest_scans(latest: str, where: str) -> str:
    """SQL: org_id, entity_key and id of the newest finished evaluation of each chunk of
    the scan of latest evaluations ``l`` (rows of ``latest_evaluations``, of the FROM
    item ``latest``) that ``where`` selects, for those of scans sent in more than one
    chunk (``s`` is the latest evaluation)."""
    return f"""
SELECT DISTINCT ON (c.org_id, c.entity_key, c.chunk) c.org_id, c.entity_key, c.id
FROM {latest}
JOIN evaluations s ON s.id = l.evaluation_id AND s.chunks > 1
JOIN evaluations c ON c.org_id = s.org_id AND c.entity_type = 'account'
                  AND c.entity_key = s.entity_key AND c.scan_id = s.scan_id
                  AND c.chunks > 1 AND c.status = 'finished'
WHERE l.entity_type = 'account' AND {where}
ORDER BY c.org_id, c.entity_key, c.chunk, c.occurred_at DESC, c.finished_at DESC, c.id
"""


# $1-$3: accounts (org id, name) and the scan a chunk just stored belongs to
_OF_SCANS = chunks_of_latest_scans(
    """unnest($1::bigint[], $2::text[], $3::text[]) AS u(org_id, entity_key, scan_id)
JOIN latest_evaluations l ON l.org_id = u.org_id AND l.entity_type = 'account'
                         AND l.entity_key = u.entity_key""", "s.scan_id = u.scan_id")


async def current_chunks(conn: asyncpg.Connection, scans: Iterable[tuple[int, str, str]]
                         ) -> dict[tuple[int, str], list[uuid.UUID]]:
    """Of the accounts ``scans`` names with a scan (org id, name, scan id), those whose
    latest evaluation is of that scan: the evaluations of its chunks. The caller holds
    the accounts' rows of ``latest_evaluations`` (``worker.store``), and runs this in a
    statement after taking them, to see the chunks that others stored meanwhile."""
    scans = sorted(set(scans))
    if not scans:
        return {}
    found: dict[tuple[int, str], list[uuid.UUID]] = {}
    rows = await conn.fetch(_OF_SCANS, [s[0] for s in scans], [s[1] for s in scans],
                            [s[2] for s in scans])
    for org_id, account, evaluation_id in rows:
        found.setdefault((org_id, account), []).append(evaluation_id)
    return found
