"""The compliance summary the worker's store keeps, against the real Postgres: after
every step it answers what aggregating the current state itself answers (newer
evaluations replace older ones, late older ones do not, concurrent writers of one
org add up), it equals a summary rebuilt from scratch, and the migration that adds
it fills it from a database stored before."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from gavel import compliance, compliance_summary
from gavel.migrations import migrate
from gavel.orgs import create_org
from gavel.settings import Settings
from tests.compliance_oracle import compliance_from_current_state
from tests.helpers import pool_migrated_before
from tests.policy_setup import org_id, publish
from tests.result_seed import Evaluation, seed
from tests.result_seed import Violation as SeededViolation
from worker.evaluate import PackResult, Violation
from worker.index import Applicable, GroupRef
from worker.store import Finished, store_batch

T0 = datetime(2026, 3, 1, tzinfo=UTC)
BASELINE = [{"name": "no-public", "enforcementLevel": "mandatory", "rego": ""},
            {"name": "encryption", "enforcementLevel": "advisory", "rego": ""}]
FILTERS: list[dict[str, Any]] = [
    {}, {"entityType": "stack"}, {"entityType": "account"}, {"group": "prod"},
    {"group": "shared"}, {"group": "absent"}, {"pack": "baseline"}, {"pack": "tagging"},
    {"group": "prod", "pack": "baseline"}, {"entityType": "stack", "group": "shared"},
    {"entityType": "account", "pack": "baseline"},
]


def run(pack: str, version: int, groups: list[str], *found: tuple[str, str],
        error: bool = False, disabled: tuple[str, ...] = ()) -> PackResult:
    """A pack's result: ``found`` is (policy, level) per violation; ``disabled`` the
    policies its config disabled."""
    applicable = Applicable(0, pack, version, f"{version}.0.0", {},
                            tuple(GroupRef(g, "audit") for g in groups))
    return PackResult(applicable, error="failed" if error else None, violations=[
        Violation(list(groups), pack, version, f"{version}.0.0", policy, level, f"urn:{n}",
                  f"{policy} broken", None) for n, (policy, level) in enumerate(found)],
        disabled=list(disabled))


def finished(oid: int, entity: str, at: datetime, *runs: PackResult,
             entity_type: str = "stack") -> Finished:
    levels = {v.level for r in runs for v in r.violations}
    outcome = "error" if any(r.error for r in runs) else "mandatory" \
        if "mandatory" in levels else "advisory" if levels else "pass"
    evaluation_id = uuid.uuid4()
    return Finished(evaluation_id, str(evaluation_id), oid, entity_type, entity, "update", at,
                    1, outcome, False, list(runs), "test")


async def store(pool: asyncpg.Pool, *batch: Finished) -> None:
    async with pool.acquire() as conn:
        await store_batch(conn, list(batch))


async def answers(pool: asyncpg.Pool, oid: int) -> list[Any]:
    """The summary's answer for every filter, checked against the current state's."""
    found = []
    for filters in FILTERS:
        packs, groups, total = await compliance.compliance(pool, oid, filters, 0, 1000)
        assert (packs, groups) == await compliance_from_current_state(pool, oid, filters), \
            filters
        assert total == len(packs)
        found.append((packs, groups))
    return found


# when a range's violations were observed: kept as bounds that only widen until the
# range's row goes, so they hold the rebuilt (exact) bounds rather than equal them
BOUNDS = ("first_observed_at", "last_observed_at")


async def summary_rows(pool: asyncpg.Pool, oid: int) -> dict[str, list[tuple[Any, ...]]]:
    tables = ("current_pack_results", *(t.name for t in compliance_summary.COUNT_TABLES))
    return {table: sorted(tuple(v for k, v in r.items() if k not in BOUNDS)
                          for r in await pool.fetch(
                              f"SELECT * FROM {table} WHERE org_id = $1", oid))
            for table in tables}


async def range_bounds(pool: asyncpg.Pool, oid: int
                       ) -> dict[tuple[Any, ...], tuple[datetime, datetime]]:
    rows = await pool.fetch("SELECT * FROM violation_id_range_counts WHERE org_id = $1", oid)
    return {(r["group_name"], r["entity_type"], r["level"], r["id_range"]):
            (r["first_observed_at"], r["last_observed_at"]) for r in rows}


async def assert_as_rebuilt(pool: asyncpg.Pool, oid: int) -> None:
    """The counts kept step by step are those of a summary rebuilt from scratch, and the
    bounds kept of when each range's violations were observed hold the rebuilt ones."""
    kept, kept_bounds = await summary_rows(pool, oid), await range_bounds(pool, oid)
    async with pool.acquire() as conn:
        await compliance_summary.rebuild(conn, oid)
    assert await summary_rows(pool, oid) == kept
    rebuilt_bounds = await range_bounds(pool, oid)
    assert kept_bounds.keys() == rebuilt_bounds.keys()
    for key, (first, last) in rebuilt_bounds.items():
        assert first is not None and last is not None
        assert kept_bounds[key][0] <= first and last <= kept_bounds[key][1], key


async def latest(pool: asyncpg.Pool, oid: int, entity: str) -> uuid.UUID:
    return await pool.fetchval(
        "SELECT evaluation_id FROM latest_evaluations WHERE org_id = $1 AND entity_key = $2",
        oid, entity)


async def test_summary_follows_the_latest_evaluation(pool: asyncpg.Pool, new_org) -> None:
    org, _ = await new_org()
    oid = await org_id(pool, org)
    await publish(pool, org, "baseline", BASELINE)
    await publish(pool, org, "baseline", BASELINE)

    await store(pool, finished(
        oid, "web/prod", T0 + timedelta(hours=1),
        run("baseline", 1, ["prod"], ("no-public", "mandatory"), ("no-public", "mandatory"),
            ("encryption", "advisory")),
        run("tagging", 1, ["prod", "shared"], ("required-tags", "advisory"))), finished(
        oid, "api/dev", T0 + timedelta(hours=1), run("baseline", 1, ["default-policy-group"])),
        finished(oid, "acct-a", T0 + timedelta(hours=1),
                 run("baseline", 2, ["default-account-policy-group"],
                     ("no-public", "advisory")), entity_type="account"))
    first = await answers(pool, oid)
    assert first[0][0][0]["entitiesEvaluated"] == 2  # baseline 1: web/prod and api/dev

    # later violations lie in another range of ids: the range counts move with them
    await pool.execute("SELECT setval('violations_id_seq', nextval('violations_id_seq') + $1)",
                       1 << compliance.ID_RANGE_BITS)
    newer = finished(oid, "web/prod", T0 + timedelta(hours=3),
                     run("baseline", 1, ["prod"], error=True),
                     run("tagging", 1, ["prod", "shared"]))
    await store(pool, newer)
    replaced = await answers(pool, oid)
    assert replaced != first

    # an older evaluation arriving late is history, not the current state
    await store(pool, finished(oid, "web/prod", T0 + timedelta(hours=2),
                               run("baseline", 1, ["prod"], *[("no-public", "mandatory")] * 5)))
    assert await latest(pool, oid, "web/prod") == newer.evaluation_id
    assert await answers(pool, oid) == replaced

    # two evaluations of one entity in one batch: the newer wins; a pack version run
    # twice (under groups with different configs) counts once
    await store(pool, finished(
        oid, "api/dev", T0 + timedelta(hours=5),
        run("tagging", 1, ["prod"], ("required-tags", "advisory")), run("tagging", 1, ["shared"]),
        run("baseline", 2, ["default-policy-group"], ("encryption", "advisory"))), finished(
        oid, "api/dev", T0 + timedelta(hours=4), run("baseline", 1, ["default-policy-group"])))
    await answers(pool, oid)
    await assert_as_rebuilt(pool, oid)

    # a policy disabled in every run of the pack version is not evaluated there; in one
    # run of two it still is (under the other group)
    await store(pool, finished(
        oid, "web/prod", T0 + timedelta(hours=5, minutes=30),
        run("baseline", 1, ["prod"], disabled=("no-public",)),
        run("tagging", 1, ["prod", "shared"], disabled=("required-tags",))), finished(
        oid, "acct-a", T0 + timedelta(hours=5),
        run("baseline", 2, ["default-account-policy-group"], disabled=("no-public",)),
        run("baseline", 2, ["audit-accounts"], error=True, disabled=("no-public",)),
        entity_type="account"))
    [(packs, _), *_] = await answers(pool, oid)
    policies = {(p["name"], p["version"], q["name"]): (q["entitiesEvaluated"],
                                                       q["entitiesPassing"])
                for p in packs for q in p["policies"]}
    # baseline 1 ran on web/prod alone; baseline 2 on api/dev, and errored on acct-a;
    # tagging on web/prod (required-tags disabled) and api/dev (failing it)
    assert policies[("baseline", 1, "no-public")] == (0, 0)
    assert policies[("baseline", 1, "encryption")] == (1, 1)
    assert policies[("baseline", 2, "no-public")] == (1, 1)
    assert policies[("tagging", 1, "required-tags")] == (1, 0)
    await assert_as_rebuilt(pool, oid)
    await store(pool, finished(
        oid, "web/prod", T0 + timedelta(hours=5, minutes=45),
        run("baseline", 1, ["prod"], disabled=("no-public",)),
        run("baseline", 1, ["staging"])))
    [(packs, _), *_] = await answers(pool, oid)
    assert {(p["name"], p["version"], q["name"]): q["entitiesEvaluated"]
            for p in packs for q in p["policies"]}[("baseline", 1, "no-public")] == 1

    # the same results again change no count; no packs at all leave none behind
    await store(pool, finished(oid, "web/prod", T0 + timedelta(hours=6),
                               run("baseline", 1, ["prod"], error=True),
                               run("tagging", 1, ["prod", "shared"])))
    await answers(pool, oid)
    for entity, entity_type in (("web/prod", "stack"), ("api/dev", "stack"),
                                ("acct-a", "account")):
        await store(pool, finished(oid, entity, T0 + timedelta(hours=7),
                                   entity_type=entity_type))
    assert await answers(pool, oid) == [([], [])] * len(FILTERS)
    assert all(rows == [] for rows in (await summary_rows(pool, oid)).values())


def random_runs(rng: random.Random) -> list[PackResult]:
    menu = [("baseline", 1, ["prod"]), ("baseline", 2, ["prod", "shared"]),
            ("tagging", 1, ["shared"]), ("tagging", 1, ["team-a"]),
            ("baseline", 1, ["default-policy-group"])]
    runs = []
    for pack, version, groups in rng.sample(menu, rng.randrange(len(menu) + 1)):
        found = [(rng.choice(["no-public", "encryption", "required-tags"]),
                  rng.choice(["advisory", "mandatory"])) for _ in range(rng.randrange(4))]
        disabled = tuple(p for p in ("no-public", "required-tags") if rng.random() < 0.3)
        runs.append(run(pack, version, groups, *found, error=rng.random() < 0.1,
                        disabled=disabled))
    return runs


async def test_concurrent_writers_of_one_org_add_up(pool: asyncpg.Pool, new_org) -> None:
    org, _ = await new_org()
    oid = await org_id(pool, org)
    entities = [(f"proj/stack-{n}", "stack") for n in range(12)] + \
        [(f"account-{n}", "account") for n in range(4)]

    async def writer(seed_value: int) -> None:
        rng = random.Random(seed_value)
        async with pool.acquire() as conn:
            for _ in range(25):
                batch = [finished(oid, key, T0 + timedelta(minutes=rng.randrange(600)),
                                  *random_runs(rng), entity_type=entity_type)
                         for key, entity_type in rng.sample(entities, 6)]
                await store_batch(conn, batch)

    await asyncio.gather(writer(1), writer(2), writer(3))
    await answers(pool, oid)
    await assert_as_rebuilt(pool, oid)


async def test_migration_fills_the_summary_from_stored_results(
        stack_env: dict[str, str], settings: Settings, session_id: str) -> None:
    async with pool_migrated_before(stack_env["GAVEL_DATABASE_URL"], settings.database,
                                    f"gavel_test_{session_id}_summary", 6) as pool:
        oid, _ = await create_org(pool, "before")
        await seed(pool, oid, stored_before(), summary=False)
        async with pool.acquire() as conn:
            await migrate(conn)
        assert (await answers(pool, oid))[0][0]
        await assert_as_rebuilt(pool, oid)


async def test_migration_cuts_the_entities_into_counted_blocks(
        stack_env: dict[str, str], settings: Settings, session_id: str) -> None:
    """Past 4,096 current violations of an entity type, the migration that adds the
    blocks of entities starts a block, and counts them as the worker would."""
    async with pool_migrated_before(stack_env["GAVEL_DATABASE_URL"], settings.database,
                                    f"gavel_test_{session_id}_blocks", 6) as pool:
        oid, _ = await create_org(pool, "before")
        public = SeededViolation("baseline", "no-public", "mandatory", ["prod"])
        tags = SeededViolation("tagging", "required-tags", "advisory", ["prod", "shared"])
        await seed(pool, oid, [
            Evaluation("stack", f"proj/stack-{n:03d}", T0, [public, tags] * 50,
                       packs=[("baseline", 1, ["prod"], False),
                              ("tagging", 1, ["prod", "shared"], False)])
            for n in range(90)], summary=False)
        async with pool.acquire() as conn:
            await migrate(conn)
        # the 4,097th violation is the 97th of the 41st stack
        assert await pool.fetch("SELECT entity_type, first_key FROM entity_blocks") == \
            [("stack", "proj/stack-040"), ("stack", "proj/stack-081")]
        await assert_as_rebuilt(pool, oid)


def stored_before() -> list[Evaluation]:
    at = datetime(2025, 6, 1, tzinfo=UTC)
    public = SeededViolation("baseline", "no-public", "mandatory", ["prod"])
    # the same pack version under a group whose config makes the policy advisory
    staging = SeededViolation("baseline", "no-public", "advisory", ["staging"])
    tags = SeededViolation("tagging", "required-tags", "advisory", ["prod", "shared"])
    return [
        Evaluation("stack", "web/prod", at, [public] * 3),
        Evaluation("stack", "web/prod", at + timedelta(hours=1), [public, staging, tags],
                   packs=[("baseline", 1, ["prod"], False), ("baseline", 1, ["staging"], False),
                          ("tagging", 1, ["prod", "shared"], False)]),
        Evaluation("stack", "api/prod", at, [],
                   packs=[("baseline", 1, ["prod"], True), ("tagging", 1, ["shared"], False)]),
        # baseline errored under prod and left a violation under staging: no entity
        # fails a policy of a pack version that errored on it
        Evaluation("stack", "api/staging", at, [staging],
                   packs=[("baseline", 1, ["prod"], True), ("baseline", 1, ["staging"], False)]),
        Evaluation("account", "acct-a", at,
                   [SeededViolation("baseline", "encryption", "advisory",
                                    ["default-account-policy-group"], version=2)]),
    ]


async def entity_block_rows(pool: asyncpg.Pool, oid: int) -> dict[str, dict[str, int]]:
    """Each block's first key -> its violations by level, counted from the current
    violations."""
    rows = await pool.fetch("""
        SELECT coalesce((SELECT max(first_key) FROM entity_blocks b
                         WHERE b.org_id = c.org_id AND b.entity_type = c.entity_type
                           AND b.first_key <= c.entity_key), '') AS first_key,
               level, count(*) AS n
        FROM current_violations c WHERE org_id = $1 GROUP BY 1, 2""", oid)
    blocks: dict[str, dict[str, int]] = {}
    for r in rows:
        blocks.setdefault(r["first_key"], {})[r["level"]] = r["n"]
    return blocks


async def test_blocks_of_entities_split_as_they_fill(pool: asyncpg.Pool, new_org) -> None:
    """Stores that fill a block of entities past the limit split it at its middle
    entity, also while other writers of the org store; the counts then hold each
    block's rows, as rebuilt from scratch, and one entity's rows stay one block."""
    org, _ = await new_org()
    oid = await org_id(pool, org)
    limit = 6
    stacks = [f"proj/stack-{n:02d}" for n in range(30)]
    random.Random(5).shuffle(stacks)

    def evaluated(key: str, n: int) -> Finished:
        found = [("no-public", "mandatory")] * (n % 4 + 1) + [("encryption", "advisory")] * 2
        return finished(oid, key, T0 + timedelta(minutes=n),
                        run("baseline", 1, ["prod"] if n % 2 else ["prod", "shared"], *found))

    async def writer(keys: list[str], first: int) -> None:
        async with pool.acquire() as conn:
            for n, key in enumerate(keys, first):
                await store_batch(conn, [evaluated(key, n)], split_limit=limit)

    await asyncio.gather(writer(stacks[::2], 0), writer(stacks[1::2], 100))
    # a later evaluation of some: their violations move within their block
    await writer(stacks[:10], 200)
    blocks = await entity_block_rows(pool, oid)
    assert len(blocks) >= 4
    # a block is split once a store fills it past the limit, and a store adds at most
    # 4 violations of a level: no block passes the limit by more than that
    assert max(n for levels in blocks.values() for n in levels.values()) <= limit + 4
    await assert_as_rebuilt(pool, oid)

    # one entity with more violations of a level than the limit: its rows are split off
    # from the others' into a block of their own, and that block no further
    def huge(n: int, at: int) -> Finished:
        return finished(oid, "zz/huge", T0 + timedelta(hours=at),
                        run("baseline", 1, ["prod"], *[("no-public", "mandatory")] * n))

    async with pool.acquire() as conn:
        await store_batch(conn, [huge(20, 1)], split_limit=limit)
        for k in range(3):
            await store_batch(conn, [evaluated(f"zz/more-{k}", 0)], split_limit=limit)
        await store_batch(conn, [huge(21, 2)], split_limit=limit)
    blocks = await entity_block_rows(pool, oid)
    assert blocks["zz/huge"] == {"mandatory": 21}
    assert sum(blocks[max(blocks)].values()) == 9  # the three others after it
    await assert_as_rebuilt(pool, oid)
