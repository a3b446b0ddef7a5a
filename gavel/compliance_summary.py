"""Each entity's current state, and the compliance counts that ``gavel.compliance`` reads.

Written in the transaction that advances entities' latest evaluations
(``worker.store``), with one statement for all the entities of a batch:

* ``current_violations``: a copy of the latest evaluation's violations (an account's
  latest scan sent in chunks: every chunk's, ``gavel.scan_state``);
* ``current_pack_results``: its provenance, one row per pack run (pack version, the
  groups it ran under, errored, violations left);
* counts per org, summed over its entities: per pack version
  (``compliance_pack_counts``), per policy (``compliance_policy_counts``) and per group
  (``compliance_group_counts``), each keyed by entity type and by the group (``''``:
  under any group) or pack (``''``: any pack) a filter names, so that every combination
  of the compliance filters reads a few rows.

It also keeps how many current violations lie in each range of ids
(``violation_id_range_counts``, per group, entity type and level), where a page by
number of the order by id starts (``gavel.compliance.KeptCounts.id_landing``), and
bounds when each range's violations were observed, where one sorted by observedAt
starts (``gavel.observed_landing``); and how many lie in each block of entities
(``entity_block_counts``, the same way), where one sorted by entity starts
(``gavel.entity_blocks``).

The statement that replaces an entity's rows returns those it deletes and those it
inserts, and ``gavel.compliance_changes`` adds up what they contributed (negatively)
and contribute, so only the net change of each count is written, and a re-evaluation
that changes nothing changes no compliance count (its violations' ids move to the
newest range). Adding them up costs the worker about what the aggregation it replaces
cost Postgres, which every worker shares. The counts are the
only rows that writers of different entities share, so ``add`` writes them last in the
transaction and in key order: a writer of the same org waits at most for the other's
upserts and commit, and two never deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from gavel import compliance, entity_blocks, scan_state
from gavel.compliance_changes import ChangeCounter, Changes, Entity, FoundViolations, PackRun
from gavel.db import columns

_ENTITIES = "unnest($1::bigint[], $2::text[], $3::text[]) AS u(org_id, entity_type, entity_key)"
_OF_ENTITIES = ("c.org_id = u.org_id AND c.entity_type = u.entity_type "
                "AND c.entity_key = u.entity_key")
# rows of current_pack_results as PackRun
_RUN = ("org_id, entity_type, entity_key, pack, pack_version, version_tag, groups, errored, "
        "violations, disabled")
_VIOLATION = ("org_id, entity_type, entity_key, groups, pack, pack_version, policy, level, "
              "violation_id, observed_at")
_PACK_RESULTS = """
INSERT INTO current_pack_results AS c (org_id, entity_type, entity_key, evaluation_id, pack,
                                       pack_version, version_tag, groups, errored, violations,
                                       disabled)
SELECT e.org_id, e.entity_type, e.entity_key, e.id, p ->> 'name', (p ->> 'version')::int,
       p ->> 'versionTag',
       ARRAY(SELECT g ->> 'name' FROM jsonb_array_elements(p -> 'groups') AS g),
       coalesce(p ->> 'status' = 'error', false), coalesce((p ->> 'violations')::int, 0),
       ARRAY(SELECT jsonb_array_elements_text(coalesce(p -> 'disabledPolicies', '[]')))
FROM evaluations e CROSS JOIN LATERAL jsonb_array_elements(e.packs) AS p
"""


def _first_key(entity: str) -> str:
    """The first key of the block of entities of ``entity`` (a row with org_id,
    entity_type and entity_key; '' for the first block)."""
    return f"""coalesce((SELECT max(b.first_key) FROM entity_blocks b
          WHERE b.org_id = {entity}.org_id AND b.entity_type = {entity}.entity_type
            AND b.first_key <= {entity}.entity_key), '')"""
# a violation's range of ids
_ID_RANGE = f"violation_id >> {compliance.ID_RANGE_BITS}"
# The rows the statement below returns, all in one shape: kind, sign, org_id,
# entity_type, entity_key, pack, pack_version, name, level, groups, number, errored,
# disabled, count, first_observed_at, last_observed_at. A pack run ('run') has its
# version tag as its name and its violations as its number; violations ('found') alike
# in all but their id and observed time come as one row, with their policy, their
# range of ids and how many they are; an entity's block ('block') has its first key as
# its name. (Plain rows: asyncpg reads them in half the time it takes to read as many
# records in an array; and one row per kind of violation of an entity, not per
# violation: at 100 resources an evaluation has some 40 violations of a few kinds,
# and reading and adding them up one by one took a tenth of the worker's time.)
_AS_RUN = ("org_id, entity_type, entity_key, pack, pack_version, version_tag, NULL::text, "
           "groups, violations::bigint, errored, disabled, NULL::bigint, NULL::timestamptz, "
           "NULL::timestamptz")
_FOUND_KIND = ("org_id, entity_type, entity_key, pack, pack_version, policy, level, groups, "
               f"{_ID_RANGE}")
_AS_FOUND = (f"{_FOUND_KIND}, NULL::bool, NULL::text[], count(*), {{first}}, {{last}}")


def _returning(columns: str) -> str:
    return "RETURNING " + ", ".join(f"c.{column.strip()}" for column in columns.split(","))


# $1-$3 the entities whose latest evaluation changed, $4 those evaluations. The
# sub-statements do not see each other's rows: each deletes only what was there. It
# returns the rows deleted and inserted, as pack runs and violations, and the entities'
# blocks, for the ChangeCounter.
_REPLACE = f"""
WITH cleared_violations AS (
    DELETE FROM current_violations c USING {_ENTITIES} WHERE {_OF_ENTITIES}
    {_returning(_VIOLATION)}),
copied_violations AS (
    INSERT INTO current_violations AS c (violation_id, evaluation_id, org_id, entity_type,
                                         entity_key, groups, pack, pack_version, version_tag,
                                         policy, level, urn, message, details, observed_at)
    SELECT id, evaluation_id, org_id, entity_type, entity_key, groups, pack, pack_version,
           version_tag, policy, level, urn, message, details, observed_at
    FROM violations WHERE evaluation_id = ANY($4::uuid[])
    {_returning(_VIOLATION)}),
cleared_runs AS (
    DELETE FROM current_pack_results c USING {_ENTITIES} WHERE {_OF_ENTITIES}
    {_returning(_RUN)}),
copied_runs AS (
    {_PACK_RESULTS} WHERE e.id = ANY($4::uuid[])
    {_returning(_RUN)}),
blocks AS (SELECT u.org_id, u.entity_type, u.entity_key, {_first_key("u")} AS first_key
           FROM {_ENTITIES})
SELECT 'run' AS kind, -1 AS sign, {_AS_RUN} FROM cleared_runs
UNION ALL SELECT 'run', 1, {_AS_RUN} FROM copied_runs
UNION ALL SELECT 'found', -1,
                 {_AS_FOUND.format(first="NULL::timestamptz", last="NULL::timestamptz")}
          FROM cleared_violations GROUP BY {_FOUND_KIND}
UNION ALL SELECT 'found', 1, {_AS_FOUND.format(first="min(observed_at)", last="max(observed_at)")}
          FROM copied_violations GROUP BY {_FOUND_KIND}
UNION ALL SELECT 'block', 0, org_id, entity_type, entity_key, NULL::text, NULL::int,
                 first_key, NULL::text, NULL::text[], NULL::bigint, NULL::bool, NULL::text[],
                 NULL::bigint, NULL::timestamptz, NULL::timestamptz
          FROM blocks
"""
_ORG_SCAN_CHUNKS = scan_state.chunks_of_latest_scans("latest_evaluations l", "l.org_id = $1")
_ORG_PACK_RESULTS = f"""
{_PACK_RESULTS}
WHERE e.id IN (SELECT evaluation_id FROM latest_evaluations WHERE org_id = $1
               UNION ALL SELECT id FROM ({_ORG_SCAN_CHUNKS}) AS c)
"""
_ORG_RUNS = f"SELECT 1 AS sign, {_RUN} FROM current_pack_results WHERE org_id = $1"
# an org's current violations, those alike but in id and observed time counted together
_ORG_FOUND = f"""
SELECT 1 AS sign, org_id, entity_type, entity_key, groups, pack, pack_version, policy, level,
       {_ID_RANGE} AS id_range, count(*),
       min(observed_at), max(observed_at)
FROM current_violations WHERE org_id = $1
GROUP BY org_id, entity_type, entity_key, groups, pack, pack_version, policy, level, id_range
"""
_ORG_BLOCKS = f"""
SELECT e.org_id, e.entity_type, e.entity_key, {_first_key("e")}
FROM (SELECT DISTINCT org_id, entity_type, entity_key FROM current_violations
      WHERE org_id = $1) AS e
"""


# Fields of a change row that are not counts: how a stored value and a change combine
# (a pack version's tag; the bounds of when a range's violations were observed, widened
# by what is added and never narrowed by what is taken away)
_COMBINED = {"version_tag": "greatest", "first_observed_at": "least",
             "last_observed_at": "greatest"}


@dataclass(frozen=True)
class CountTable:
    """A table of counts: its key columns, and the fields of a change row it stores
    (``entities`` under the table's own name for it)."""

    kind: str
    name: str
    keys: tuple[str, ...]
    fields: tuple[str, ...]
    entities_column: str
    # rows of group '' past a limit (the statement's last parameter) come back: blocks
    # of entities to split
    splits: bool = False

    @property
    def columns(self) -> list[str]:
        return [self.entities_column if f == "entities" else f for f in self.fields]

    @property
    def counts(self) -> list[str]:
        return [c for c in self.columns if c not in _COMBINED]

    @property
    def parameters(self) -> int:
        """How many parameters its part of the statement that adds takes."""
        return len(self.keys) + len(self.columns) + (1 if self.splits else 0)

    def upsert_sql(self, first: int) -> str:
        """The WITH item adding its changes, its arrays the parameters from ``first`` on
        (a splitting table's limit after them). It returns the rows that reached zero or,
        for a splitting table, whose group '' passed the limit, with their key in the
        columns of ``_KEY_COLUMNS`` (NULL where not its own)."""
        columns = [*self.keys, *self.columns]
        updates = [f"{c} = t.{c} + EXCLUDED.{c}" for c in self.counts]
        updates += [f"{c} = {_COMBINED[c]}(t.{c}, EXCLUDED.{c})" for c in self.columns
                    if c in _COMBINED]
        past_limit = (f"group_name = '' AND {self.counts[0]} > ${first + len(columns)}"
                      if self.splits else "false")
        key = ", ".join(c if c in self.keys else f"NULL::{_KEY_TYPES.get(c, 'text')} AS {c}"
                        for c in _KEY_COLUMNS)
        return f"""
added_{self.kind} AS (
    INSERT INTO {self.name} AS t ({", ".join(columns)})
    SELECT * FROM unnest({_arrays(columns, self.counts, first)})
    ON CONFLICT ({", ".join(self.keys)}) DO UPDATE SET {", ".join(updates)}
    RETURNING '{self.kind}' AS kind, {key},
              {" AND ".join(f"{c} = 0" for c in self.counts)} AS emptied,
              {past_limit} AS past_limit)"""

    def delete_empty_sql(self, first: int) -> str:
        """The WITH item deleting the rows of the keys given (parameters from ``first``
        on) whose counts are all zero."""
        return f"""
emptied_{self.kind} AS (
    DELETE FROM {self.name} t
    USING unnest({_arrays(self.keys, [], first)}) AS k({", ".join(self.keys)})
    WHERE {" AND ".join(f"t.{c} = k.{c}" for c in self.keys)}
      AND {" AND ".join(f"t.{c} = 0" for c in self.counts)})"""


_KEY_TYPES = {"org_id": "bigint", "id_range": "bigint", "pack_version": "int"}


def _arrays(columns: Sequence[str], counts: Sequence[str], first: int = 1) -> str:
    types = {**_KEY_TYPES, "first_observed_at": "timestamptz",
             "last_observed_at": "timestamptz", **{c: "int" for c in counts}}
    return ", ".join(f"${n}::{types.get(c, 'text')}[]" for n, c in enumerate(columns, first))


PACK_COUNTS = CountTable("pack", "compliance_pack_counts",
                         ("org_id", "group_name", "pack", "pack_version", "entity_type"),
                         ("version_tag", "entities", "errored", "passing"), "evaluated")
POLICY_COUNTS = CountTable("policy", "compliance_policy_counts",
                           ("org_id", "group_name", "pack", "pack_version", "policy",
                            "entity_type"), ("entities", "advisory", "mandatory", "skipped"),
                           "failing")
GROUP_COUNTS = CountTable("group", "compliance_group_counts",
                          ("org_id", "pack", "group_name", "entity_type"),
                          ("entities", "errored", "passing", "advisory", "mandatory"),
                          "evaluated")
ENTITY_BLOCK_COUNTS = CountTable("block", "entity_block_counts",
                                 ("org_id", "group_name", "entity_type", "level", "first_key"),
                                 ("entities",), "violations", splits=True)
ID_RANGE_COUNTS = CountTable("range", "violation_id_range_counts",
                             ("org_id", "group_name", "entity_type", "level", "id_range"),
                             ("entities", "first_observed_at", "last_observed_at"),
                             "violations")
COUNT_TABLES = (PACK_COUNTS, POLICY_COUNTS, GROUP_COUNTS, ID_RANGE_COUNTS,
                ENTITY_BLOCK_COUNTS)
# every key column of a count table, the shape in which the statement that adds returns
# the keys of all of them
_KEY_COLUMNS = tuple(dict.fromkeys(c for t in COUNT_TABLES for c in t.keys))
_TABLES = {t.kind: t for t in COUNT_TABLES}


def _per_table(item: Callable[[CountTable, int], str], parameters: Callable[[CountTable], int]
               ) -> list[str]:
    """Each table's WITH item, its parameters following the table's before it."""
    items, first = [], 1
    for table in COUNT_TABLES:
        items.append(item(table, first))
        first += parameters(table)
    return items


# One statement adds the changes of every table, one round trip (and one deletes the
# rows that reached zero). Every writer locks the rows in one order: each table's in
# key order, the tables in the order of COUNT_TABLES, as the statement reads each item
# to its end before the next.
_ADD = "WITH" + ",".join(_per_table(CountTable.upsert_sql, lambda t: t.parameters)) + "\n" + \
    "\nUNION ALL\n".join(f"SELECT * FROM added_{t.kind} WHERE emptied OR past_limit"
                          for t in COUNT_TABLES)
_DELETE_EMPTY = "WITH" + ",".join(_per_table(CountTable.delete_empty_sql,
                                             lambda t: len(t.keys))) + "\nSELECT 1"


async def replace_current_state(conn: asyncpg.Connection, entities: Sequence[Entity],
                                evaluation_ids: Sequence[uuid.UUID]) -> Changes:
    """The current violations and pack runs of ``entities`` become those of
    ``evaluation_ids``, their latest evaluations (and, for an account's scan sent in
    chunks, the other chunks': ``gavel.scan_state``); returns the change of the counts,
    for ``add``. Planning this statement costs more than running it for a few entities:
    the caller's transaction should plan it once per connection, with index lookups
    (``gavel.db.transaction_by_key``)."""
    if not entities:
        return {}
    org_ids, entity_types, entity_keys = columns(entities, 3)
    rows = await conn.fetch(_REPLACE, org_ids, entity_types, entity_keys, evaluation_ids)
    runs: list[PackRun] = []
    found: list[FoundViolations] = []
    blocks: dict[Entity, str] = {}
    for (kind, sign, org_id, entity_type, entity_key, pack, version, name, level, groups,
         number, errored, disabled, count, first_observed_at, last_observed_at) in rows:
        if kind == "found":
            found.append(FoundViolations(sign, org_id, entity_type, entity_key, groups, pack,
                                         version, name, level, number, count,
                                         first_observed_at, last_observed_at))
        elif kind == "run":
            runs.append(PackRun(sign, org_id, entity_type, entity_key, pack, version, name,
                                groups, errored, number, disabled))
        else:
            blocks[(org_id, entity_type, entity_key)] = name
    counter = ChangeCounter()
    counter.add_runs(runs)
    counter.add_found(found, blocks)
    return counter.changes()


async def add(conn: asyncpg.Connection, changes: Changes,
              split_limit: int = entity_blocks.SPLIT_LIMIT) -> list[entity_blocks.Block]:
    """Add the changes to the counts, in key order; delete counts that drop to zero.
    Returns the blocks of entities whose violations of one level now pass
    ``split_limit``, to split once the transaction is committed."""
    if not any(changes.values()):
        return []
    arguments: list[Any] = []
    for table in COUNT_TABLES:
        rows = sorted(changes.get(table.kind, {}).items())
        arguments += columns([(*key, *values) for key, values in rows],
                              len(table.keys) + len(table.columns))
        if table.splits:
            arguments.append(split_limit)
    emptied: dict[str, list[tuple[Any, ...]]] = {t.kind: [] for t in COUNT_TABLES}
    full: list[entity_blocks.Block] = []
    for row in await conn.fetch(_ADD, *arguments):
        table = _TABLES[row["kind"]]
        if row["emptied"]:
            emptied[table.kind].append(tuple(row[c] for c in table.keys))
        if row["past_limit"]:
            full.append(entity_blocks.Block(row["org_id"], row["entity_type"],
                                            row["first_key"]))
    if any(emptied.values()):
        await conn.execute(_DELETE_EMPTY, *[
            column for table in COUNT_TABLES
            for column in columns(sorted(emptied[table.kind]), len(table.keys))])
    return full


async def rebuild(conn: asyncpg.Connection, org_id: int, block_rows: int | None = None) -> None:
    """Recompute an org's pack runs and counts from its latest evaluations and current
    violations, in one transaction holding the org's lock alone (no store of it runs);
    with ``block_rows``, its entities are first cut into blocks of about that many
    violations anew (``gavel.entity_blocks.place``), else its blocks are kept.

    For data written without the worker (seeds, repairs)."""
    async with conn.transaction():
        await entity_blocks.lock(conn, org_id)
        # the org's whole current state is aggregated: keep the hash tables in memory
        await conn.execute("SET LOCAL work_mem = '64MB'")
        if block_rows is not None:
            await entity_blocks.place(conn, org_id, block_rows)
        for table in ("current_pack_results", *(t.name for t in COUNT_TABLES)):
            await conn.execute(f"DELETE FROM {table} WHERE org_id = $1", org_id)
        await conn.execute(_ORG_PACK_RESULTS, org_id)
        counter = ChangeCounter()
        counter.add_runs(PackRun._make(run) for run in await conn.fetch(_ORG_RUNS, org_id))
        blocks = {tuple(b[:3]): b[3] for b in await conn.fetch(_ORG_BLOCKS, org_id)}
        async for part in _parts(conn.cursor(_ORG_FOUND, org_id)):
            counter.add_found((FoundViolations._make(f) for f in part), blocks)
        await add(conn, counter.changes())


async def _parts(cursor: asyncpg.cursor.CursorFactory, size: int = 10_000
                 ) -> AsyncIterator[list[asyncpg.Record]]:
    """The cursor's rows, ``size`` at a time."""
    opened = await cursor
    while part := await opened.fetch(size):
        yield part
