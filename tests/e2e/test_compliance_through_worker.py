"""The compliance summary kept by the real worker (HTTP -> Kafka -> worker -> OPA ->
Postgres): after each evaluation it answers what aggregating the current state
itself answers, for every filter."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from gavel import compliance
from gavel.settings import Settings
from tests.compliance_oracle import compliance_from_current_state
from tests.e2e.test_evaluation_flow import CLEAN, PUBLIC, UNTAGGED, evaluate
from tests.policy_setup import make_group, org_id, publish, set_default_group_packs
from tests.result_client import get

FILTERS: list[dict[str, Any]] = [
    {}, {"entityType": "stack"}, {"group": "prod"}, {"group": "scan"},
    {"group": "default-policy-group"}, {"pack": "baseline"}, {"pack": "tagging"},
    {"group": "prod", "pack": "baseline"},
]


async def assert_summary_matches(pool: asyncpg.Pool, oid: int) -> None:
    for filters in FILTERS:
        packs, groups, _ = await compliance.compliance(pool, oid, filters, 0, 1000)
        assert (packs, groups) == await compliance_from_current_state(pool, oid, filters), \
            filters


async def test_summary_follows_evaluations_through_the_worker(
        client: TestClient, worker: Any, pool: asyncpg.Pool, settings: Settings,
        new_org) -> None:
    org, token = await new_org()
    oid = await org_id(pool, org)
    baseline = await publish(pool, org)
    tagging = await publish(pool, org, name="tagging")
    await set_default_group_packs(pool, settings, org, [(baseline, {})])
    await make_group(pool, settings, org, "prod", stacks=[("web", "prod"), ("api", "prod")],
                     packs=[(baseline, {}), (tagging, {"all": "mandatory"})])
    # the same pack version under another config: web/prod runs baseline twice, the
    # second time without no-public-buckets
    await make_group(pool, settings, org, "scan", mode="audit", stacks=[("web", "prod")],
                     packs=[(baseline, {"required-tags": {"requiredTags": ["cost-center"]},
                                        "no-public-buckets": {"enforcementLevel": "disabled"}})])

    steps = [("web", "prod", [PUBLIC, UNTAGGED]), ("api", "prod", [UNTAGGED]),
             ("web", "dev", [PUBLIC]), ("web", "prod", [CLEAN]), ("api", "prod", [CLEAN]),
             ("web", "prod", [UNTAGGED])]
    for project, stack, resources in steps:
        await evaluate(client, token, org, project, stack, "update", resources)
        await assert_summary_matches(pool, oid)

    body = await get(client, token, f"/api/orgs/{org}/compliance?filter[group]=scan")
    [scanned] = body["packs"]
    assert (scanned["name"], scanned["entitiesEvaluated"], scanned["entitiesPassing"]) == (
        "baseline", 1, 0)
    # disabled under scan, so not evaluated there; prod ran it on web/prod all the same
    by_policy = {p["name"]: p for p in scanned["policies"]}
    assert (by_policy["no-public-buckets"]["entitiesEvaluated"],
            by_policy["no-public-buckets"]["entitiesPassing"]) == (0, 0)
    assert by_policy["required-tags"]["entitiesEvaluated"] == 1
    body = await get(client, token, f"/api/orgs/{org}/compliance?filter[pack]=baseline")
    [everywhere] = body["packs"]
    assert {p["name"]: p["entitiesEvaluated"] for p in everywhere["policies"]} == {
        "no-public-buckets": 3, "required-tags": 3}
