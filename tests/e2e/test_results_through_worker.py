"""Results of real evaluations (HTTP -> Kafka -> worker -> OPA -> Postgres) read back
through the result queries: the current state follows the latest evaluation."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from gavel.settings import Settings
from tests.e2e.test_evaluation_flow import CLEAN, PUBLIC, UNTAGGED, evaluate
from tests.policy_setup import publish, set_default_group_packs
from tests.result_client import fetch_all, get


async def test_current_state_follows_the_latest_evaluation(
        client: TestClient, worker: Any, pool: asyncpg.Pool, settings: Settings,
        new_org) -> None:
    org, token = await new_org()
    await set_default_group_packs(pool, settings, org, [(await publish(pool, org), {})])
    first = await evaluate(client, token, org, "web", "prod", "update", [PUBLIC, UNTAGGED])
    other = await evaluate(client, token, org, "api", "dev", "preview", [UNTAGGED])
    assert first["outcome"] == "mandatory" and other["outcome"] == "advisory"

    current = await fetch_all(client, token, f"/api/orgs/{org}/violations?sort=entity,policy")
    assert [(v["entity"]["project"], v["policy"], v["urn"]) for v in current] == [
        ("api", "required-tags", "urn:b2"), ("web", "no-public-buckets", "urn:b1"),
        ("web", "required-tags", "urn:b2")]
    assert {v["evaluationId"] for v in current} == {first["id"], other["id"]}

    second = await evaluate(client, token, org, "web", "prod", "update", [CLEAN])
    assert second["outcome"] == "pass"
    body = await get(client, token, f"/api/orgs/{org}/violations?filter[entity]=web/prod")
    assert body["violations"] == [] and body["meta"]["page"]["total"] == 0
    pulumi = await get(client, token, f"/api/orgs/{org}/policyresults/violationsv2")
    assert [(v["projectName"], v["stackName"], v["policyName"])
            for v in pulumi["policyViolations"]] == [("api", "dev", "required-tags")]

    history = await fetch_all(client, token, f"/api/orgs/{org}/evaluations", key="evaluations")
    assert [(e["id"], e["violationCount"]) for e in history] == [
        (second["id"], 0), (other["id"], 1), (first["id"], 2)]
    stack_history = await get(client, token,
                              f"/api/orgs/{org}/evaluations?filter[entity]=web/prod"
                              "&filter[outcome]=mandatory")
    assert [e["id"] for e in stack_history["evaluations"]] == [first["id"]]

    summary = await get(client, token, f"/api/orgs/{org}/compliance")
    [baseline] = summary["packs"]
    assert (baseline["entitiesEvaluated"], baseline["entitiesPassing"],
            baseline["violations"]) == (2, 1, {"advisory": 1, "mandatory": 0})
    assert summary["groups"][0]["name"] == "default-policy-group"
