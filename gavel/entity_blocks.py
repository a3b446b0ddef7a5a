"""Blocks of entities: where a page by number of a sort led by entity starts.

Entities sort by (entity type, key). An org's entities of one type are cut into
blocks of consecutive keys, each starting at a key of ``entity_blocks`` (the first at
``''``, before every key, which has no row). The worker counts each current violation
in its entity's block (``entity_block_counts``, per group, entity type and level, in
``gavel.compliance_summary``), so a page by number starts at the block that holds it
(``gavel.compliance.KeptCounts.entity_landing``) and skips at most that block's rows.

A block whose violations of one level pass a limit is split in two at its middle
entity (``split``), its counts moved with the rows. Every transaction that reads the
blocks to count violations holds the org's lock shared (``shared_locks_sql``), and a split
holds it alone: so it moves exactly what the stores before it counted, and the stores
after it count in the new blocks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from gavel.db import org_lock_key

log = logging.getLogger(__name__)

# violations of one level in a block past which it is split; blocks are placed anew
# (``place``) every PLACED_ROWS violations
SPLIT_LIMIT = 8192
PLACED_ROWS = 4096
_LOCK_CLASS = 0x6776_6C62  # the first of the two keys of the org's lock


def shared_locks_sql(org_ids: Iterable[int]) -> str:
    """A statement taking the orgs' locks shared, in order (org ids are ints: written
    in, so that it joins the statement beginning the transaction)."""
    keys = sorted({org_lock_key(int(org_id)) for org_id in org_ids})
    return "".join(f"SELECT pg_advisory_xact_lock_shared({_LOCK_CLASS}, {key}); "
                   for key in keys)


async def lock(conn: asyncpg.Connection, org_id: int) -> None:
    """Take the org's lock alone, until the transaction ends: no store of the org runs."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _LOCK_CLASS, org_lock_key(org_id))


@dataclass(frozen=True, order=True)
class Block:
    org_id: int
    entity_type: str
    first_key: str


# the rows of a block from a key on: $1 org, $2 entity type, ``first`` the key (the
# block's first, $3), $4 the next block's first key (NULL: none follows)
_FROM_KEY = """
WHERE org_id = $1 AND entity_type = $2 AND entity_key >= {first}
  AND ($4::text IS NULL OR entity_key < $4)"""
_IN_BLOCK = "FROM current_violations" + _FROM_KEY.format(first="$3")
_NEXT = """
SELECT min(first_key) FROM entity_blocks
WHERE org_id = $1 AND entity_type = $2 AND first_key > $3
"""
_LEVELS = f"SELECT level, count(*) AS n {_IN_BLOCK} GROUP BY level"
_MIDDLE = f"SELECT entity_key {_IN_BLOCK} ORDER BY entity_key OFFSET $5 LIMIT 1"
_AFTER = f"SELECT min(entity_key) {_IN_BLOCK} AND entity_key > $5"
_LOWEST = f"SELECT min(entity_key) {_IN_BLOCK}"
# Move the counts of the rows from $5 on (to $4, the next block) into the new block $5.
_MOVE = f"""
WITH moved AS (
    SELECT group_name, level, count(*)::int AS n
    FROM current_violations CROSS JOIN LATERAL unnest(array_append(groups, '')) AS group_name
    {_FROM_KEY.format(first="$5").strip()}
    GROUP BY group_name, level),
taken AS (
    UPDATE entity_block_counts t SET violations = t.violations - m.n
    FROM moved m
    WHERE t.org_id = $1 AND t.group_name = m.group_name AND t.entity_type = $2
      AND t.level = m.level AND t.first_key = $3
    RETURNING t.group_name),
added AS (
    INSERT INTO entity_block_counts (org_id, group_name, entity_type, level, first_key,
                                     violations)
    SELECT $1, group_name, $2, level, $5, n FROM moved
    RETURNING group_name)
SELECT (SELECT count(*) FROM taken) AS taken, (SELECT count(*) FROM added) AS added
"""
_DROP_EMPTY = """
DELETE FROM entity_block_counts
WHERE org_id = $1 AND entity_type = $2 AND first_key = $3 AND violations = 0
"""


async def split(conn: asyncpg.Connection, block: Block, limit: int = SPLIT_LIMIT) -> str | None:
    """Split the block at its middle entity if one level's violations in it pass
    ``limit``, in one transaction holding the org's lock alone; the new block's first
    key, or None (small enough by then, or one entity's rows)."""
    args = (block.org_id, block.entity_type, block.first_key)
    async with conn.transaction():
        await lock(conn, block.org_id)
        following = await conn.fetchval(_NEXT, *args)
        levels = {r["level"]: int(r["n"]) for r in await conn.fetch(_LEVELS, *args, following)}
        if max(levels.values(), default=0) <= limit:
            return None
        middle = await conn.fetchval(_MIDDLE, *args, following, sum(levels.values()) // 2)
        if middle == await conn.fetchval(_LOWEST, *args, following):
            middle = await conn.fetchval(_AFTER, *args, following, middle)
            if middle is None:
                return None
        await conn.execute("INSERT INTO entity_blocks (org_id, entity_type, first_key) "
                           "VALUES ($1, $2, $3)", block.org_id, block.entity_type, middle)
        moved = await conn.fetchrow(_MOVE, *args, following, middle)
        if moved["taken"] != moved["added"]:
            raise RuntimeError(f"counts of {block} do not hold the rows from {middle!r} on")
        await conn.execute(_DROP_EMPTY, *args)
    return str(middle)


async def split_all(conn: asyncpg.Connection, blocks: Iterable[Block],
                    limit: int = SPLIT_LIMIT) -> None:
    """Split each block past the limit. A failure is logged, not raised: the block only
    stays larger (the rows are stored), and the next store into it tries again."""
    for block in sorted(set(blocks)):
        began = time.perf_counter()
        try:
            first = await split(conn, block, limit)
        except (asyncpg.PostgresError, RuntimeError):
            log.exception("splitting %s failed", block)
            continue
        if first is not None:
            log.info("block of entities %s split at %r in %.1f ms", block, first,
                     (time.perf_counter() - began) * 1000)


# Blocks placed anew: one starts at the entity holding every $2-th violation of each
# entity type (in the order of entities; the first block starts at '').
_PLACE = """
INSERT INTO entity_blocks (org_id, entity_type, first_key)
SELECT DISTINCT org_id, entity_type, entity_key FROM (
    SELECT org_id, entity_type, entity_key,
           row_number() OVER (PARTITION BY entity_type ORDER BY entity_key) AS n
    FROM current_violations WHERE org_id = $1) AS numbered
WHERE n > 1 AND (n - 1) % $2 = 0
"""


async def place(conn: asyncpg.Connection, org_id: int, rows: int = PLACED_ROWS) -> None:
    """Cut the org's entities into blocks anew, of about ``rows`` current violations
    each, in the caller's transaction; their counts are then to be rebuilt."""
    await conn.execute("DELETE FROM entity_blocks WHERE org_id = $1", org_id)
    await conn.execute(_PLACE, org_id, rows)
