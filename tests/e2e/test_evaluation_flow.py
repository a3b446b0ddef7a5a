"""Events through HTTP -> outbox -> Kafka -> worker -> OPA -> Postgres -> long-poll."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import orjson
from aiohttp.test_utils import TestClient

from gavel.kafka import make_producer
from gavel.settings import Settings
from tests.group_api import error_of
from tests.helpers import auth
from tests.policy_setup import BASELINE, make_group, org_id, publish, set_default_group_packs

PUBLIC = {"urn": "urn:b1", "type": "aws:s3/bucket:Bucket", "name": "logs",
          "properties": {"acl": "public-read", "tags": {"owner": "web"}}}
UNTAGGED = {"urn": "urn:b2", "type": "aws:s3/bucket:Bucket", "name": "data",
            "properties": {"acl": "private", "tags": {}}}
CLEAN = {"urn": "urn:b3", "type": "aws:s3/bucket:Bucket", "name": "ok",
         "properties": {"acl": "private", "tags": {"owner": "web"}}}


async def send(client: TestClient, token: str, org: str, project: str, stack: str,
               kind: str, resources: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    resp = await client.post(f"/api/stacks/{org}/{project}/{stack}/events", headers=auth(token),
                             json={"kind": kind, "resources": resources, **extra})
    assert resp.status == 202, await resp.text()
    return await resp.json()


async def result(client: TestClient, token: str, org: str, evaluation_id: str,
                 wait: float = 60) -> dict[str, Any]:
    resp = await client.get(f"/api/orgs/{org}/evaluations/{evaluation_id}?wait={wait}",
                            headers=auth(token))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["status"] == "finished", body
    return body


async def evaluate(client: TestClient, token: str, org: str, project: str, stack: str,
                   kind: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    accepted = await send(client, token, org, project, stack, kind, resources)
    assert accepted["status"] == "pending"
    return await result(client, token, org, accepted["id"])


def bucket(urn: str, acl: str, tags: dict[str, str]) -> dict[str, Any]:
    return {"urn": urn, "type": "aws:s3/bucket:Bucket", "name": urn.split(":")[-1],
            "properties": {"acl": acl, "tags": tags}}


def levels(body: dict[str, Any]) -> set[tuple[str, str]]:
    return {(v["policy"], v["level"]) for v in body["violations"]}


async def test_preventative_mandatory_blocks_audit_does_not(
        client: TestClient, worker: Any, pool: asyncpg.Pool, settings: Settings, new_org) -> None:
    org, token = await new_org()
    version = await publish(pool, org)
    await make_group(pool, settings, org, "prod", stacks=[("web", "prod")],
                     packs=[(version, {})])
    await make_group(pool, settings, org, "scan", mode="audit", stacks=[("web", "audit")],
                     packs=[(version, {})])

    blocked = await evaluate(client, token, org, "web", "prod", "preview", [PUBLIC])
    assert blocked["outcome"] == "mandatory"
    assert blocked["blocking"] is True
    [violation] = blocked["violations"]
    assert violation == {"groups": ["prod"], "pack": "baseline", "packVersion": 1,
                         "versionTag": violation["versionTag"], "policy": "no-public-buckets",
                         "level": "mandatory", "urn": "urn:b1",
                         "message": "bucket logs is public", "details": None}
    [pack] = blocked["packs"]
    assert pack["opaVersion"] and pack["durationMs"] >= 0 and pack["status"] == "ok"
    assert pack["groups"] == [{"name": "prod", "mode": "preventative"}]

    audited = await evaluate(client, token, org, "web", "audit", "preview", [PUBLIC])
    assert audited["outcome"] == "mandatory"
    assert audited["blocking"] is False

    refresh = await evaluate(client, token, org, "web", "prod", "refresh", [PUBLIC])
    assert refresh["blocking"] is False
    stack = await (await client.get(f"/api/stacks/{org}/web/prod", headers=auth(token))).json()
    assert stack["lastEvaluation"]["id"] == refresh["id"]


# evaluates to two values for one input: OPA answers 500 with eval_conflict_error
CONFLICTING = """package test.conflicting
kind := "one" if input.resources
kind := "two" if input.resources
violations contains {"message": kind}
"""


async def test_a_failing_policy_leaves_the_other_policies_results(
        client: TestClient, worker: Any, pool: asyncpg.Pool, settings: Settings, new_org) -> None:
    """One policy's evaluation error fails the pack run, but the mandatory violation
    another policy of the pack finds is still reported, and blocks."""
    org, token = await new_org()
    version = await publish(pool, org, policies=[
        *BASELINE, {"name": "conflicting", "description": "", "enforcementLevel": "advisory",
                    "rego": CONFLICTING}])
    await make_group(pool, settings, org, "prod", stacks=[("web", "prod")],
                     packs=[(version, {})])

    body = await evaluate(client, token, org, "web", "prod", "update", [PUBLIC, UNTAGGED])
    assert (body["outcome"], body["blocking"]) == ("error", True)
    assert levels(body) == {("no-public-buckets", "mandatory"), ("required-tags", "advisory")}
    [pack] = body["packs"]
    assert (pack["status"], pack["violations"]) == ("error", 2)
    assert pack["error"].startswith("policy 'conflicting' not evaluated: OPA 500: ")
    assert "eval_conflict_error" in pack["error"]
    assert "no-public-buckets" not in pack["error"]


async def test_advisory_disabled_and_two_groups(
        client: TestClient, worker: Any, pool: asyncpg.Pool, settings: Settings, new_org) -> None:
    org, token = await new_org()
    baseline = await publish(pool, org)
    other = await publish(pool, org, name="tagging")
    await make_group(pool, settings, org, "prod", stacks=[("api", "prod")],
                     packs=[(baseline, {"no-public-buckets": {"enforcementLevel": "disabled"}})])
    advisory = await evaluate(client, token, org, "api", "prod", "update", [PUBLIC, UNTAGGED])
    assert advisory["outcome"] == "advisory"
    assert advisory["blocking"] is False
    assert levels(advisory) == {("required-tags", "advisory")}
    [run] = advisory["packs"]
    assert run["disabledPolicies"] == ["no-public-buckets"]

    await make_group(pool, settings, org, "extra", stacks=[("api", "prod")],
                     packs=[(other, {"all": "mandatory",
                                     "required-tags": {"requiredTags": ["cost-center"]}})])
    both = await evaluate(client, token, org, "api", "prod", "update", [CLEAN])
    by_pack = {(v["pack"], v["policy"]) for v in both["violations"]}
    assert by_pack == {("tagging", "no-public-buckets"), ("tagging", "required-tags")} - {
        ("tagging", "no-public-buckets")}
    assert both["outcome"] == "mandatory" and both["blocking"] is True
    assert {p["name"]: p["disabledPolicies"] for p in both["packs"]} == {
        "baseline": ["no-public-buckets"], "tagging": []}


async def test_violations_read_mandatory_first_then_by_pack_policy_and_urn(
        client: TestClient, worker: Any, pool: asyncpg.Pool, settings: Settings, new_org) -> None:
    org, token = await new_org()
    # two packs of the same policies, the one added to the group first sorting last
    packs = [await publish(pool, org, name=name) for name in ("baseline", "audit-tags")]
    await make_group(pool, settings, org, "prod", stacks=[("web", "prod")],
                     packs=[(version, {}) for version in packs])
    resources = [bucket("urn:b9", "public-read", {}), bucket("urn:b2", "private", {}),
                 bucket("urn:b5", "public-read", {}), bucket("urn:b1", "private", {}),
                 bucket("urn:b7", "public-read", {"owner": "web"})]
    body = await evaluate(client, token, org, "web", "prod", "update", resources)
    listed = [(v["level"], v["pack"], v["policy"], v["urn"]) for v in body["violations"]]
    mandatory = [("mandatory", pack, "no-public-buckets", urn)
                 for pack in ("audit-tags", "baseline") for urn in ("urn:b5", "urn:b7", "urn:b9")]
    advisory = [("advisory", pack, "required-tags", urn)
                for pack in ("audit-tags", "baseline") for urn in ("urn:b1", "urn:b2", "urn:b5",
                                                                   "urn:b9")]
    assert listed == mandatory + advisory


async def test_group_change_applies_to_the_very_next_event(
        client: TestClient, worker: Any, pool: asyncpg.Pool, settings: Settings, new_org) -> None:
    org, token = await new_org()
    version = await publish(pool, org)
    before = await evaluate(client, token, org, "svc", "dev", "preview", [PUBLIC])
    assert before["outcome"] == "pass" and before["packs"] == []
    await set_default_group_packs(pool, settings, org, [(version, {})])
    after = await evaluate(client, token, org, "svc", "dev", "preview", [PUBLIC])
    assert after["outcome"] == "mandatory"
    assert after["violations"][0]["groups"] == ["default-policy-group"]
    await set_default_group_packs(pool, settings, org, [(version, {"all": "advisory"})])
    relaxed = await evaluate(client, token, org, "svc", "dev", "preview", [PUBLIC])
    assert relaxed["outcome"] == "advisory" and relaxed["blocking"] is False


async def test_same_event_id_is_one_evaluation(
        client: TestClient, worker: Any, pool: asyncpg.Pool, new_org) -> None:
    org, token = await new_org()
    first = await send(client, token, org, "p", "s", "update", [CLEAN], eventId="deploy-42")
    again = await send(client, token, org, "p", "s", "update", [CLEAN], eventId="deploy-42")
    assert again["id"] == first["id"]
    await result(client, token, org, first["id"])
    repeat = await send(client, token, org, "p", "s", "update", [CLEAN], eventId="deploy-42")
    assert repeat == {"id": first["id"], "status": "finished"}
    oid = await org_id(pool, org)
    assert await pool.fetchval("SELECT count(*) FROM evaluations WHERE org_id = $1", oid) == 1
    assert await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE value->>'eventId' = 'deploy-42' "
        "AND value->>'org' = $1", org) == 1
    stack = await pool.fetchrow("SELECT resource_count FROM stacks WHERE org_id = $1", oid)
    assert stack["resource_count"] == 1


async def test_an_event_id_sent_before_for_another_event_is_refused(
        client: TestClient, pool: asyncpg.Pool, new_org) -> None:
    """Answering with the first event's evaluation would hand a gate another stack's
    outcome; the id names one event of the org."""
    org, token = await new_org()
    first = await send(client, token, org, "web", "staging", "preview", [], eventId="run-9")
    for project, stack, kind in (("web", "prod", "preview"), ("web", "staging", "update")):
        resp = await client.post(f"/api/stacks/{org}/{project}/{stack}/events",
                                 headers=auth(token),
                                 json={"kind": kind, "resources": [PUBLIC], "eventId": "run-9"})
        assert await error_of(resp, 409) == (
            "eventId: 'run-9' was sent before for the stack 'web/staging' (preview); an "
            "eventId names one event of the organization")
    assert (await send(client, token, org, "web", "staging", "preview", [],
                       eventId="run-9"))["id"] == first["id"]
    assert await pool.fetchval("SELECT count(*) FROM evaluations WHERE org_id = $1",
                               await org_id(pool, org)) == 1


async def test_ingest_validation_and_roles(client: TestClient, pool: asyncpg.Pool,
                                           new_org) -> None:
    org, token = await new_org()
    url = f"/api/stacks/{org}/web/prod/events"
    bad = [({"kind": "deploy", "resources": []}, "kind"),
           ({"kind": "preview"}, "resources"),
           ({"kind": "preview", "resources": [{"type": "x"}]}, "resources.0.urn"),
           ({"kind": "preview", "resources": [], "extra": 1}, "extra: unknown field")]
    for body, field in bad:
        resp = await client.post(url, headers=auth(token), json=body)
        assert resp.status == 400
        assert field in (await resp.json())["message"]
    resp = await client.post(f"/api/stacks/{org}/web/bad%20name/events", headers=auth(token),
                             json={"kind": "preview", "resources": []})
    assert resp.status == 400 and "stack" in (await resp.json())["message"]

    made = await client.post(f"/api/orgs/{org}/tokens", headers=auth(token),
                             json={"role": "ingest"})
    ingest = (await made.json())["token"]
    posted = await client.post(url, headers=auth(ingest), json={"kind": "preview", "resources": []})
    assert posted.status == 202
    # a CI gate's token reads the outcome of what it sent, and nothing else
    evaluation = await client.get(f"/api/orgs/{org}/evaluations/{(await posted.json())['id']}",
                                  headers=auth(ingest))
    assert evaluation.status == 200 and (await evaluation.json())["kind"] == "preview"
    for path in ("", "/evaluations", "/violations", "/compliance", "/policygroups"):
        assert (await client.get(f"/api/orgs/{org}{path}", headers=auth(ingest))).status == 403
    missing = await client.get(f"/api/orgs/{org}/evaluations/{uuid.uuid4()}",
                               headers=auth(token))
    assert missing.status == 404
    # a CI gate with a mistyped or doubled wait must not get an answer without waiting
    for query, named in (("wiat=60", "unknown query parameter wiat"),
                         ("wait=1&wait=60", "wait: given more than once"),
                         ("wait=soon", "wait: 'soon' is not a number")):
        resp = await client.get(f"/api/orgs/{org}/evaluations/{uuid.uuid4()}?{query}",
                                headers=auth(token))
        assert resp.status == 400 and named in (await resp.json())["message"]


async def test_events_produced_straight_to_kafka_and_dead_letters(
        client: TestClient, worker: Any, pool: asyncpg.Pool, settings: Settings, new_org) -> None:
    org, token = await new_org()
    version = await publish(pool, org)
    await set_default_group_packs(pool, settings, org, [(version, {})])
    good_ids = [str(uuid.uuid4()) for _ in range(3)]
    marker = uuid.uuid4().hex
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        topic = settings.kafka.topic_stack_events
        for i, evaluation_id in enumerate(good_ids):
            event = {"schema": 1, "eventId": f"{marker}-{i}", "org": org,
                     "occurredAt": "2026-11-21T10:00:00Z", "evaluationId": evaluation_id,
                     "project": "ext", "stack": "prod", "kind": "update",
                     "resources": [PUBLIC]}
            await producer.send_and_wait(topic, key=f"{org}/ext/prod".encode(),
                                         value=orjson.dumps(event))
            if i < 2:
                bad = b"{not json " + marker.encode() if i == 0 else orjson.dumps(
                    {"schema": 1, "org": org, "marker": marker})
                await producer.send_and_wait(topic, key=b"bad", value=bad)
    finally:
        await producer.stop()
    for evaluation_id in good_ids:
        body = await result(client, token, org, evaluation_id)
        assert body["outcome"] == "mandatory"
    for _ in range(100):
        rows = await pool.fetch("SELECT error FROM dead_letters WHERE position($1 in "
                                "convert_from(value, 'UTF8')) > 0", marker)
        if len(rows) == 2:
            break
        await asyncio.sleep(0.1)
    errors = sorted(r["error"] for r in rows)
    assert len(errors) == 2
    assert errors[0].startswith("eventId: Field required") or "eventId" in errors[0]
    assert any("not JSON" in e for e in errors)


async def test_events_on_kafka_reusing_another_events_ids_go_to_the_dead_letters(
        client: TestClient, worker: Any, pool: asyncpg.Pool, settings: Settings, new_org) -> None:
    """Taking them for the event stored before would drop them without a trace; the same
    event again (a redelivery, or resent with its eventId) is done."""
    org, token = await new_org()
    marker = uuid.uuid4().hex
    first_id = str(uuid.uuid4())

    def event(event_id: str, evaluation_id: str, stack: str, kind: str = "update") -> bytes:
        return orjson.dumps({"schema": 1, "eventId": f"{marker}-{event_id}", "org": org,
                             "occurredAt": "2026-11-21T10:00:00Z",
                             "evaluationId": evaluation_id, "project": "ext",
                             "stack": stack, "kind": kind, "resources": [CLEAN]})

    last_id = str(uuid.uuid4())
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        key, topic = f"{org}/ext/prod".encode(), settings.kafka.topic_stack_events
        await producer.send_and_wait(topic, key=key, value=event("a", first_id, "prod"))
        await result(client, token, org, first_id)
        for value in (event("a", first_id, "prod"),               # delivered again
                      event("a", str(uuid.uuid4()), "prod"),      # resent with its eventId
                      event("a", str(uuid.uuid4()), "staging"),   # another stack's event
                      event("a", str(uuid.uuid4()), "prod", "preview"),
                      event("b", first_id, "prod"),               # another event
                      event("c", last_id, "prod")):
            await producer.send_and_wait(topic, key=key, value=value)
    finally:
        await producer.stop()
    await result(client, token, org, last_id)
    for _ in range(100):
        rows = await pool.fetch("SELECT error FROM dead_letters WHERE position($1 in "
                                "convert_from(value, 'UTF8')) > 0 ORDER BY id", marker)
        if len(rows) >= 3:
            break
        await asyncio.sleep(0.1)
    assert sorted(r["error"] for r in rows) == sorted([
        f"eventId: '{marker}-a' was sent before for the stack 'ext/prod' (update); an "
        "eventId names one event of the organization"] * 2 + [
        f"evaluationId: '{first_id}' is the evaluation of another event; each event needs "
        "an evaluationId of its own"])
    assert await pool.fetchval("SELECT count(*) FROM evaluations WHERE org_id = $1",
                               await org_id(pool, org)) == 2


async def test_a_long_poll_whose_notification_is_lost_is_answered(
        client: TestClient, pool: asyncpg.Pool, new_org) -> None:
    """The row finishes without the notification that the worker's store sends: the
    API's periodic sweep of waited-for evaluations finds it well before the wait ends."""
    org, token = await new_org()
    evaluation_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO evaluations (id, org_id, event_id, entity_type, entity_key, kind, status,"
        " occurred_at) VALUES ($1, $2, 'quiet', 'stack', 'web/prod', 'preview', 'pending',"
        " now())", evaluation_id, await org_id(pool, org))
    waiting = asyncio.create_task(client.get(
        f"/api/orgs/{org}/evaluations/{evaluation_id}?wait=60", headers=auth(token)))
    await asyncio.sleep(0.5)
    assert not waiting.done()
    await pool.execute("UPDATE evaluations SET status = 'finished', outcome = 'pass', "
                       "blocking = false, finished_at = now() WHERE id = $1", evaluation_id)
    resp = await asyncio.wait_for(waiting, 30)  # well before the wait of 60 s ends
    body = await resp.json()
    assert resp.status == 200 and (body["status"], body["outcome"]) == ("finished", "pass")
