"""The OpenAPI document describes every route the app serves, and what it answers."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import jsonschema
from aiohttp.test_utils import TestClient

from api.app import create_app
from api.handlers.evaluations import MAX_WAIT
from gavel.settings import Settings
from tests.e2e.test_account_scans import scan
from tests.e2e.test_audits import finished
from tests.e2e.test_evaluation_flow import PUBLIC, result, send
from tests.group_api import GroupApi
from tests.helpers import auth
from tests.policy_setup import org_id, publish


async def test_every_route_is_described(client: TestClient, settings: Settings) -> None:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    document = await resp.json()
    app = create_app(settings)
    missing = []
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        path = route.resource.canonical if route.resource else ""
        if route.method.lower() not in document["paths"].get(path, {}):
            missing.append(f"{route.method} {path}")
    assert not missing, f"routes missing from the OpenAPI document: {missing}"


def _keys(items: list[dict[str, Any]]) -> set[str]:
    return {key for item in items for key in item}


async def _evaluation_ids(client: TestClient, org: str, token: str, kind: str) -> list[str]:
    resp = await client.get(f"/api/orgs/{org}/evaluations?filter[kind]={kind}",
                            headers=auth(token))
    assert resp.status == 200, await resp.text()
    return [e["id"] for e in (await resp.json())["evaluations"]]


async def _answers(client: TestClient, pool: asyncpg.Pool,  # type: ignore[no-untyped-def]
                   new_org) -> list[dict[str, Any]]:
    """Evaluations of each shape: a stack's event, an account's scan chunk, an audit's,
    and one still pending."""
    org, token = await new_org()
    api = GroupApi(client, org, token)
    assert (await api.add_account("aws-prod")).status == 201
    await publish(pool, org)
    for group in ("default-policy-group", "default-account-policy-group"):
        resp = await api.patch(group, {"addPolicyPack": {"name": "baseline", "version": 1}})
        assert resp.status == 204, await resp.text()
    event = await send(client, token, org, "web", "prod", "preview", [PUBLIC])
    chunk = await scan(client, token, org, "aws-prod", [PUBLIC], scanId="s1", chunks=2)
    answers = [await result(client, token, org, event["id"]),
               await result(client, token, org, chunk["id"])]
    resp = await client.post(f"/api/orgs/{org}/audits", headers=auth(token),
                             json={"policyGroup": "default-account-policy-group"})
    assert resp.status == 202, await resp.text()
    await finished(client, org, token, (await resp.json())["id"])
    [audited, *_] = await _evaluation_ids(client, org, token, "audit")
    answers.append(await result(client, token, org, audited))
    pending = uuid.uuid4()
    await pool.execute(
        """INSERT INTO evaluations (id, org_id, event_id, entity_type, entity_key, kind,
                                    status, resource_count, occurred_at)
           VALUES ($1, $2, $3, 'stack', 'web/prod', 'update', 'pending', 1, now())""",
        pending, await org_id(pool, org), f"pending-{pending}")
    resp = await client.get(f"/api/orgs/{org}/evaluations/{pending}", headers=auth(token))
    assert resp.status == 200, await resp.text()
    answers.append(await resp.json())
    return answers


async def test_evaluation_answers_match_their_schema(
        client: TestClient, worker: Any, pool: asyncpg.Pool, new_org) -> None:
    document = await (await client.get("/api/openapi.json")).json()
    schema = document["components"]["schemas"]["Evaluation"]
    answers = await _answers(client, pool, new_org)
    assert [a["status"] for a in answers] == ["finished"] * 3 + ["pending"]
    for answer in answers:
        jsonschema.Draft202012Validator(schema).validate(answer)
        assert set(answer) <= set(schema["properties"]), answer
    assert _keys(answers) == set(schema["properties"])
    packs = [pack for answer in answers for pack in answer["packs"]]
    violations = [v for answer in answers for v in answer["violations"]]
    assert packs and violations
    assert _keys(packs) == set(schema["properties"]["packs"]["items"]["properties"])
    assert _keys(violations) == set(
        schema["properties"]["violations"]["items"]["properties"])
    parameters = document["paths"]["/api/orgs/{org}/evaluations/{id}"]["get"]["parameters"]
    [wait] = [p["schema"] for p in parameters if p["name"] == "wait"]
    assert (wait["minimum"], wait["maximum"]) == (0, MAX_WAIT)
