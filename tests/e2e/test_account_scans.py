"""Account scans over HTTP: evaluated by the worker, one evaluation per chunk sent."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from tests.e2e.test_evaluation_flow import CLEAN, PUBLIC, UNTAGGED, result
from tests.group_api import GroupApi, error_of
from tests.helpers import auth
from tests.policy_setup import org_id, publish
from tests.result_client import get

DEFAULT_ACCOUNTS = "default-account-policy-group"


async def _scanned_org(client: TestClient, pool: asyncpg.Pool, new_org,  # type: ignore[no-untyped-def]
                       accounts: tuple[str, ...]) -> tuple[str, str]:
    org, token = await new_org()
    api = GroupApi(client, org, token)
    for name in accounts:
        assert (await api.add_account(name)).status == 201
    await publish(pool, org)
    assert (await api.patch(DEFAULT_ACCOUNTS, {"addPolicyPack": {
        "name": "baseline", "version": 1}})).status == 204
    return org, token


async def scan(client: TestClient, token: str, org: str, account: str,
               resources: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    resp = await client.post(f"/api/orgs/{org}/accounts/{account}/scans", headers=auth(token),
                             json={"resources": resources, **fields})
    assert resp.status == 202, await resp.text()
    return await resp.json()


async def test_a_scan_is_evaluated_under_the_account_groups(
        client: TestClient, worker: Any, pool: asyncpg.Pool, new_org) -> None:
    org, token = await _scanned_org(client, pool, new_org, ("aws-prod",))
    accepted = await scan(client, token, org, "aws-prod", [PUBLIC])
    body = await result(client, token, org, accepted["id"])
    assert body["entity"] == {"type": "account", "org": org, "account": "aws-prod"}
    assert (body["kind"], body["outcome"], body["blocking"]) == ("scan", "mandatory", False)
    assert [(v["policy"], v["groups"]) for v in body["violations"]] == [
        ("no-public-buckets", [DEFAULT_ACCOUNTS])]


async def test_a_chunk_sent_again_is_one_evaluation_of_its_own_account(
        client: TestClient, worker: Any, pool: asyncpg.Pool, new_org) -> None:
    """Discovery jobs may give every account's scan the same scanId (the day's run):
    a chunk is one event of its account's scan, not of the org."""
    org, token = await _scanned_org(client, pool, new_org, ("aws-prod", "aws-dev"))
    first = {name: await scan(client, token, org, name, [PUBLIC], scanId="nightly", chunks=1)
             for name in ("aws-prod", "aws-dev")}
    assert first["aws-prod"]["id"] != first["aws-dev"]["id"]
    again = await scan(client, token, org, "aws-prod", [PUBLIC], scanId="nightly", chunks=1)
    assert again["id"] == first["aws-prod"]["id"]
    for name, accepted in first.items():
        body = await result(client, token, org, accepted["id"])
        assert body["entity"]["account"] == name
    assert await pool.fetchval("SELECT count(*) FROM evaluations WHERE org_id = $1",
                               await org_id(pool, org)) == 2


async def test_the_violations_of_a_scan_in_chunks_are_those_of_every_chunk(
        client: TestClient, worker: Any, pool: asyncpg.Pool, new_org) -> None:
    """A discovery job sends a big account in chunks: the account's current violations
    and compliance are the whole scan's, and its next scan replaces them."""
    org, token = await _scanned_org(client, pool, new_org, ("aws-prod",))

    async def scanned(scan_id: str, *chunks: list[dict[str, Any]]) -> None:
        for number, resources in enumerate(chunks, 1):
            accepted = await scan(client, token, org, "aws-prod", resources, scanId=scan_id,
                                  chunk=number, chunks=len(chunks))
            await result(client, token, org, accepted["id"])

    async def current() -> tuple[list[str], dict[str, Any]]:
        listed = await get(client, token, f"/api/orgs/{org}/violations")
        compliance = await get(client, token,
                               f"/api/orgs/{org}/compliance?filter[entityType]=account")
        return sorted(v["urn"] for v in listed["violations"]), compliance["groups"][0]

    await scanned("monday", [PUBLIC], [UNTAGGED], [CLEAN])
    urns, group = await current()
    assert urns == ["urn:b1", "urn:b2"]
    assert (group["entitiesEvaluated"], group["entitiesPassing"],
            group["violations"]["mandatory"] + group["violations"]["advisory"]) == (1, 0, 2)

    await scanned("tuesday", [CLEAN], [UNTAGGED])
    urns, group = await current()
    assert urns == ["urn:b2"]
    assert (group["entitiesEvaluated"], group["entitiesPassing"],
            group["violations"]["mandatory"] + group["violations"]["advisory"]) == (1, 0, 1)


async def test_scan_refusals(client: TestClient, new_org) -> None:
    org, token = await new_org()
    resp = await client.post(f"/api/orgs/{org}/accounts/ghost/scans", headers=auth(token),
                             json={"resources": []})
    assert await error_of(resp, 404) == "Account 'ghost' not found"
    assert (await GroupApi(client, org, token).add_account("aws-prod")).status == 201
    resp = await client.post(f"/api/orgs/{org}/accounts/aws-prod/scans", headers=auth(token),
                             json={"resources": [], "chunk": 3, "chunks": 2})
    assert (await error_of(resp, 400)).startswith("chunk:")
