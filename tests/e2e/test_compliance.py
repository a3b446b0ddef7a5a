"""The compliance summary over HTTP, on a small current state written to Postgres:
per pack version, per policy and per group, with its filters and paging."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from gavel.orgs import create_org
from tests.policy_setup import publish
from tests.result_client import get
from tests.result_seed import BASE_TIME, Evaluation, Violation, seed

BASELINE = [{"name": "no-public", "enforcementLevel": "mandatory", "rego": ""},
            {"name": "encryption", "enforcementLevel": "advisory", "rego": ""}]
TAGGING = [{"name": "required-tags", "enforcementLevel": "advisory", "rego": ""}]
LATER = BASE_TIME + timedelta(hours=1)


def dataset() -> list[Evaluation]:
    public = [Violation("baseline", "no-public", "mandatory", ["prod"], urn=f"urn:b{n}")
              for n in (1, 2)]
    tags = Violation("tagging", "required-tags", "advisory", ["prod", "shared"], urn="urn:b1")
    return [
        # an older evaluation of web/prod: its violations are history, not current
        Evaluation("stack", "web/prod", BASE_TIME,
                   [Violation("tagging", "required-tags", "mandatory", ["prod"])] * 5),
        Evaluation("stack", "web/prod", LATER, [*public, tags],
                   packs=[("baseline", 1, ["prod"], False),
                          ("tagging", 1, ["prod", "shared"], False)]),
        Evaluation("stack", "web/dev", LATER, [],
                   packs=[("baseline", 1, ["default-policy-group"], False)]),
        Evaluation("stack", "api/prod", LATER, [],
                   packs=[("baseline", 1, ["prod"], True),
                          ("tagging", 1, ["prod", "shared"], False)]),
        Evaluation("account", "acct-a", LATER,
                   [Violation("baseline", "no-public", "advisory",
                              ["default-account-policy-group"], version=2)],
                   packs=[("baseline", 2, ["default-account-policy-group"], False)]),
    ]


@pytest_asyncio.fixture(scope="module")
async def state(pool: asyncpg.Pool) -> AsyncIterator[tuple[str, str]]:
    name = f"org-{uuid.uuid4().hex[:8]}"
    org_id, token = await create_org(pool, name)
    for pack, policies in (("baseline", BASELINE), ("baseline", BASELINE),
                           ("tagging", TAGGING)):
        await publish(pool, name, pack, policies)
    await seed(pool, org_id, dataset())
    yield name, token
    await pool.execute("DELETE FROM orgs WHERE id = $1", org_id)


def counts(evaluated: int, passing: int, advisory: int = 0, mandatory: int = 0,
           **extra: Any) -> dict[str, Any]:
    return {"entitiesEvaluated": evaluated, "entitiesPassing": passing,
            "violations": {"advisory": advisory, "mandatory": mandatory}, **extra}


def pack(name: str, version: int, totals: dict[str, Any], errored: int,
         policies: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "version": version, "versionTag": f"{version}.0.0", **totals,
            "entitiesErrored": errored,
            "policies": [{"name": n, **c} for n, c in policies.items()]}


BASELINE_1 = pack("baseline", 1, counts(3, 1, mandatory=2), 1, {
    "no-public": counts(2, 1, mandatory=2), "encryption": counts(2, 2)})
BASELINE_2 = pack("baseline", 2, counts(1, 0, advisory=1), 0, {
    "no-public": counts(1, 0, advisory=1), "encryption": counts(1, 1)})
TAGGING_1 = pack("tagging", 1, counts(2, 1, advisory=1), 0, {
    "required-tags": counts(2, 1, advisory=1)})


def group(name: str, evaluated: int, passing: int, errored: int, advisory: int = 0,
          mandatory: int = 0) -> dict[str, Any]:
    return {"name": name, **counts(evaluated, passing, advisory, mandatory),
            "entitiesErrored": errored}


async def test_packs_policies_and_groups(client: TestClient, state) -> None:
    org, token = state
    body = await get(client, token, f"/api/orgs/{org}/compliance")
    assert body["packs"] == [BASELINE_1, BASELINE_2, TAGGING_1]
    assert body["groups"] == [
        group("default-account-policy-group", 1, 0, 0, advisory=1),
        group("default-policy-group", 1, 1, 0),
        group("prod", 2, 0, 1, advisory=1, mandatory=2),
        group("shared", 2, 1, 0, advisory=1)]
    assert body["meta"]["page"]["total"] == 3


async def test_filters(client: TestClient, state) -> None:
    org, token = state
    url = f"/api/orgs/{org}/compliance"
    accounts = await get(client, token, f"{url}?filter[entityType]=account")
    assert accounts["packs"] == [BASELINE_2]
    assert [g["name"] for g in accounts["groups"]] == ["default-account-policy-group"]

    shared = await get(client, token, f"{url}?filter[group]=shared")
    assert shared["packs"] == [TAGGING_1]
    assert shared["groups"] == [group("shared", 2, 1, 0, advisory=1)]

    prod = await get(client, token, f"{url}?filter[group]=prod&filter[pack]=baseline")
    assert prod["packs"] == [pack("baseline", 1, counts(2, 0, mandatory=2), 1, {
        "no-public": counts(1, 0, mandatory=2), "encryption": counts(1, 1)})]
    assert prod["groups"] == [group("prod", 2, 0, 1, mandatory=2)]

    baseline = await get(client, token, f"{url}?filter[pack]=baseline")
    assert baseline["packs"] == [BASELINE_1, BASELINE_2]
    assert "shared" not in [g["name"] for g in baseline["groups"]]

    nothing = await get(client, token, f"{url}?filter[pack]=absent")
    assert nothing["packs"] == [] and nothing["groups"] == []
    assert nothing["meta"]["page"]["total"] == 0


async def test_pages_over_packs(client: TestClient, state) -> None:
    org, token = state
    body = await get(client, token, f"/api/orgs/{org}/compliance?page[size]=1&page[number]=1")
    assert body["packs"] == [BASELINE_2]
    assert len(body["groups"]) == 4
    assert body["meta"]["page"]["last_number"] == 2 and body["links"]["next"]


async def test_a_pack_run_twice_counts_once(client: TestClient, pool: asyncpg.Pool,
                                           new_org) -> None:
    # one pack version under two groups with different configs runs twice
    org, token = await new_org()
    org_id = int(await pool.fetchval("SELECT id FROM orgs WHERE name = $1", org))
    await seed(pool, org_id, [Evaluation(
        "stack", "web/multi", LATER,
        [Violation("tagging", "required-tags", "advisory", ["prod"])],
        packs=[("tagging", 1, ["prod"], False), ("tagging", 1, ["shared"], False)])])
    body = await get(client, token, f"/api/orgs/{org}/compliance")
    assert body["packs"] == [pack("tagging", 1, counts(1, 0, advisory=1), 0, {
        "required-tags": counts(1, 0, advisory=1)})]
    assert body["groups"] == [group("prod", 1, 0, 0, advisory=1), group("shared", 1, 1, 0)]


@pytest.mark.parametrize(("query", "message"), [
    ("filter[entityType]=stacks", "filter[entityType]: must be one of stack, account"),
    ("filter[level]=mandatory", "unknown query parameter filter[level]"),
    ("sort=name", "unknown query parameter sort"),
    ("page[size]=1001", "page[size]: must be between 1 and 1000"),
])
async def test_bad_parameters(client: TestClient, state, query: str, message: str) -> None:
    org, token = state
    body = await get(client, token, f"/api/orgs/{org}/compliance?{query}", status=400)
    assert message in body["message"], body
