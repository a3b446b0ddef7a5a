"""Audit scans through HTTP: planned by the API, fanned out on Kafka, run by the worker."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from api.audit_planner import AuditPlanner
from gavel.settings import Settings
from tests.group_api import GroupApi, error_of, stack_ref
from tests.helpers import assert_evaluations_counted, auth
from tests.policy_setup import BASELINE
from tests.policy_setup import org_id as org_id_of

STACKS = 200


def stack_resources(i: int) -> list[dict[str, Any]]:
    """Even stacks have a public bucket (mandatory); every third an untagged one."""
    items = [{"urn": f"urn:ok:{i}", "type": "aws:s3/bucket:Bucket", "name": "ok",
              "properties": {"acl": "private", "tags": {"owner": "x"}}}]
    if i % 2 == 0:
        items.append({"urn": f"urn:public:{i}", "type": "aws:s3/bucket:Bucket",
                      "name": "logs", "properties": {"acl": "public-read",
                                                     "tags": {"owner": "x"}}})
    if i % 3 == 0:
        items.append({"urn": f"urn:untagged:{i}", "type": "aws:s3/bucket:Bucket",
                      "name": "data", "properties": {"acl": "private", "tags": {}}})
    return items


EXPECTED = {"mandatory": sum(1 for i in range(STACKS) if i % 2 == 0),
            "advisory": sum(1 for i in range(STACKS) if i % 3 == 0)}


async def publish_baseline(client: TestClient, org: str, token: str,
                           name: str = "baseline") -> dict[str, Any]:
    resp = await client.post(f"/api/orgs/{org}/policypacks", headers=auth(token), json={
        "name": name, "displayName": name, "versionTag": "1.0.0", "policies": BASELINE})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def audits_of(client: TestClient, org: str, token: str) -> list[dict[str, Any]]:
    resp = await client.get(f"/api/orgs/{org}/audits?page[size]=1000", headers=auth(token))
    assert resp.status == 200, await resp.text()
    return (await resp.json())["audits"]


async def get_audit(client: TestClient, org: str, token: str, audit_id: str) -> dict[str, Any]:
    resp = await client.get(f"/api/orgs/{org}/audits/{audit_id}", headers=auth(token))
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def finished(client: TestClient, org: str, token: str, audit_id: str,
                   timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        audit = await get_audit(client, org, token, audit_id)
        if audit["status"] in ("completed", "failed"):
            return audit
        await asyncio.sleep(0.1)
    raise AssertionError(f"audit {audit_id} did not finish: {audit}")


async def all_audits_finished(client: TestClient, org: str,
                              token: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        audits = await audits_of(client, org, token)
        if audits and all(a["status"] in ("completed", "failed") for a in audits):
            return audits
        await asyncio.sleep(0.2)
    raise AssertionError(f"audits did not finish: {audits}")


async def violation_count(client: TestClient, org: str, token: str, **filters: str) -> int:
    query = "&".join(f"filter[{k}]={v}" for k, v in filters.items())
    resp = await client.get(f"/api/orgs/{org}/violations?page[size]=1&{query}",
                            headers=auth(token))
    assert resp.status == 200, await resp.text()
    return (await resp.json())["meta"]["page"]["total"]


async def estate(client: TestClient, org: str, token: str, group: str,
                 count: int) -> GroupApi:
    """An audit-mode group of ``count`` stacks with stored resources (no packs yet)."""
    api = GroupApi(client, org, token)
    assert (await api.create(name=group, entityType="stacks", mode="audit")).status == 204
    for i in range(count):
        resp = await api.put_stack("estate", f"s{i:03d}", stack_resources(i))
        assert resp.status in (200, 201), await resp.text()
    resp = await api.batch(group, [{"addStack": stack_ref("estate", f"s{i:03d}")}
                                   for i in range(count)])
    assert resp.status == 204, await resp.text()
    return api


async def test_adding_a_pack_audits_the_group_by_itself(
        client: TestClient, worker: Any, new_org) -> None:
    org, token = await new_org()
    pack = await publish_baseline(client, org, token)
    api = await estate(client, org, token, "estate", STACKS)
    await all_audits_finished(client, org, token)
    assert await violation_count(client, org, token, group="estate") == 0

    resp = await api.patch("estate", {"addPolicyPack": {"name": "baseline",
                                                        "version": pack["version"]}})
    assert resp.status == 204, await resp.text()
    audits = await all_audits_finished(client, org, token)
    newest = audits[0]
    assert newest["trigger"] == "group-change" and newest["policyGroup"] == "estate"
    assert newest["status"] == "completed", newest
    assert newest["total"] == STACKS and newest["evaluated"] == STACKS
    assert newest["violations"] == EXPECTED
    assert await violation_count(client, org, token, group="estate",
                                 level="mandatory") == EXPECTED["mandatory"]


async def test_audit_progress_moves_forward_and_counts_match_violations(
        client: TestClient, worker: Any, new_org, pool: asyncpg.Pool) -> None:
    org, token = await new_org()
    pack = await publish_baseline(client, org, token)
    api = await estate(client, org, token, "estate", STACKS)
    resp = await api.patch("estate", {"addPolicyPack": {"name": "baseline",
                                                        "version": pack["version"]}})
    assert resp.status == 204
    await all_audits_finished(client, org, token)

    resp = await client.post(f"/api/orgs/{org}/audits", headers=auth(token),
                             json={"policyGroup": "estate"})
    assert resp.status == 202, await resp.text()
    audit_id = (await resp.json())["id"]
    seen: list[tuple[str, int]] = []
    while True:
        audit = await get_audit(client, org, token, audit_id)
        seen.append((audit["status"], audit["evaluated"] + audit["failed"]))
        if audit["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.02)
    order = ["queued", "running", "completed"]
    assert [order.index(s) for s, _ in seen] == sorted(order.index(s) for s, _ in seen)
    progress = [n for _, n in seen]
    assert progress == sorted(progress), progress
    assert audit["status"] == "completed" and audit["trigger"] == "manual"
    assert (audit["total"], audit["evaluated"], audit["failed"]) == (STACKS, STACKS, 0)
    assert audit["progress"] == 1.0 and audit["policyGroups"] == ["estate"]
    assert audit["violations"] == EXPECTED
    for level, count in EXPECTED.items():
        assert await violation_count(client, org, token, level=level) == count
    assert audit["startedAt"] <= audit["finishedAt"]
    # its chunks take the topic's partitions in turn, so the workers share them evenly,
    # from a place of its own
    chunks = await pool.fetch("SELECT key, spread FROM outbox WHERE key LIKE $1 ORDER BY id",
                              f"{audit_id}/%")
    assert len(chunks) > 1
    first = uuid.UUID(audit_id).int % (1 << 20)
    assert [(r["key"], r["spread"]) for r in chunks] == [
        (f"{audit_id}/{n + 1}", first + n) for n in range(len(chunks))]
    # the worker's stores keep the counts of evaluations received, and the history's total
    org_id = await org_id_of(pool, org)
    await assert_evaluations_counted(pool, org_id)
    audited = await pool.fetchval(
        "SELECT count(*) FROM evaluations WHERE org_id = $1 AND kind = 'audit'", org_id)
    resp = await client.get(f"/api/orgs/{org}/evaluations?filter[kind]=audit&page[size]=1",
                            headers=auth(token))
    meta = (await resp.json())["meta"]["page"]
    assert (meta["total"], meta["total_estimated"]) == (audited, False)
    assert audited >= 2 * STACKS


async def test_an_org_audit_covers_every_audit_group_and_skips_preventative_ones(
        client: TestClient, worker: Any, new_org) -> None:
    org, token = await new_org()
    pack = await publish_baseline(client, org, token)
    api = await estate(client, org, token, "audited", 6)
    add = {"addPolicyPack": {"name": "baseline", "version": pack["version"]}}
    assert (await api.patch("audited", add)).status == 204
    assert (await api.create(name="gate", entityType="stacks")).status == 204
    assert (await api.put_stack("other", "prod", stack_resources(0))).status in (200, 201)
    assert (await api.patch("gate", {"addStack": stack_ref("other", "prod")})).status == 204
    assert (await api.patch("gate", add)).status == 204
    before = await all_audits_finished(client, org, token)
    assert {a["policyGroup"] for a in before} == {"audited"}, "a preventative group audited"

    resp = await client.post(f"/api/orgs/{org}/audits", headers=auth(token))
    assert resp.status == 202, await resp.text()
    audit = await finished(client, org, token, (await resp.json())["id"])
    assert audit["scope"] == "org"
    assert audit["policyGroups"] == ["audited", "default-account-policy-group"]
    assert audit["total"] == 6 and audit["evaluated"] == 6


async def test_triggers_in_quick_succession_make_one_audit(
        client: TestClient, worker: Any, new_org) -> None:
    org, token = await new_org()
    pack = await publish_baseline(client, org, token)
    api = await estate(client, org, token, "estate", 4)
    await all_audits_finished(client, org, token)
    already = len(await audits_of(client, org, token))

    add = {"name": "baseline", "version": pack["version"]}
    first, second = await asyncio.gather(
        api.patch("estate", {"addPolicyPack": add}),
        api.patch("estate", {"addPolicyPack": {
            **add, "config": {"required-tags": {"requiredTags": ["team"]}}}}))
    assert (first.status, second.status) == (204, 204)
    audits = await all_audits_finished(client, org, token)
    assert len(audits) == already + 1, audits
    assert audits[0]["trigger"] == "group-change" and audits[0]["status"] == "completed"


async def test_changes_that_change_nothing_start_no_audit(
        client: TestClient, worker: Any, pool: asyncpg.Pool, new_org) -> None:
    org, token = await new_org()
    pack = await publish_baseline(client, org, token)
    await publish_baseline(client, org, token, name="unused")
    api = await estate(client, org, token, "estate", 2)
    assert (await api.put_stack("estate", "outside", stack_resources(0))).status in (200, 201)
    add = {"name": "baseline", "version": pack["version"]}
    assert (await api.patch("estate", {"addPolicyPack": add})).status == 204
    assert (await api.create(name="clouds", entityType="accounts", mode="audit")).status == 204
    assert (await api.add_account("aws-prod")).status == 201
    assert (await api.add_account("aws-dev")).status == 201
    account = {"addInsightsAccount": {"name": "aws-prod"}}
    assert (await api.patch("clouds", account)).status == 204
    already = len(await all_audits_finished(client, org, token))

    revision = "SELECT revision FROM orgs WHERE name = $1"
    unchanged = [
        ("estate", {"addStack": stack_ref("estate", "s000")}),
        ("estate", {"removeStack": stack_ref("estate", "outside")}),
        ("estate", {"addPolicyPack": add}),
        ("estate", {"removePolicyPack": {"name": "unused"}}),
        ("clouds", account),
        ("clouds", {"removeInsightsAccount": {"name": "aws-dev"}}),
    ]
    for group, update in unchanged:
        before = await pool.fetchval(revision, org)
        resp = await api.patch(group, update)
        assert resp.status == 204, (update, await resp.text())
        # the change is recorded (and announced) as any other
        assert await pool.fetchval(revision, org) == before + 1
        assert len(await audits_of(client, org, token)) == already, update
    resp = await api.batch("estate", [update for group, update in unchanged
                                      if group == "estate"])
    assert resp.status == 204, await resp.text()
    assert len(await audits_of(client, org, token)) == already

    resp = await api.batch("estate", [{"addStack": stack_ref("estate", "s000")},
                                      {"addStack": stack_ref("estate", "outside")}])
    assert resp.status == 204, await resp.text()
    audits = await audits_of(client, org, token)
    assert len(audits) == already + 1
    assert audits[0]["trigger"] == "group-change" and audits[0]["policyGroup"] == "estate"


async def test_scheduled_scan_audits_accounts_that_asked_for_it(
        client: TestClient, worker: Any, settings: Settings, pool: asyncpg.Pool,
        new_org) -> None:
    org, token = await new_org()
    pack = await publish_baseline(client, org, token)
    api = GroupApi(client, org, token)
    for name, scheduled in (("scanned", True), ("manual-only", False)):
        resp = await api.add_account(name, scheduledScanEnabled=scheduled)
        assert resp.status == 201, await resp.text()
    await pool.execute(
        "UPDATE accounts SET resources = $2 WHERE name = 'scanned' AND org_id = "
        "(SELECT id FROM orgs WHERE name = $1)", org, stack_resources(0))
    resp = await api.patch("default-account-policy-group",
                           {"addPolicyPack": {"name": "baseline", "version": pack["version"]}})
    assert resp.status == 204, await resp.text()
    await all_audits_finished(client, org, token)

    planner = AuditPlanner(pool, settings.model_copy(update={
        "audit": settings.audit.model_copy(update={"interval": 3600})}))
    await planner.queue_scheduled_scans()
    audits = await all_audits_finished(client, org, token)
    scheduled = [a for a in audits if a["trigger"] == "schedule"]
    assert len(scheduled) == 1, audits
    assert scheduled[0]["total"] == 1 and scheduled[0]["violations"] == {
        "advisory": 1, "mandatory": 1}
    await planner.queue_scheduled_scans()  # within the interval: nothing new
    assert len(await audits_of(client, org, token)) == len(audits)


async def test_bad_audit_requests(client: TestClient, new_org) -> None:
    org, token = await new_org()
    other, other_token = await new_org()
    base = f"/api/orgs/{org}/audits"
    resp = await client.post(base, headers=auth(token), json={"policyGroup": "nope"})
    assert "nope" in await error_of(resp, 404)
    resp = await client.post(base, headers=auth(token), json={"bogus": 1})
    assert "bogus" in await error_of(resp, 400)
    resp = await client.post(base, headers=auth(token), json={"policyGroup": ""})
    assert "policyGroup" in await error_of(resp, 400)
    resp = await client.get(f"{base}?filter[status]=done", headers=auth(token))
    assert "filter[status]" in await error_of(resp, 400)
    for query, named in (("page[size]=1001", "page[size]"),
                         ("page[size]=5&page[size]=10", "page[size]: given more than once"),
                         ("filter[status]=queued&filter[status]=failed",
                          "filter[status]: given more than once"),
                         ("nope=1", "unknown query parameter nope"),
                         ("sort=status", "unknown query parameter sort"),
                         ("filter[level]=advisory", "unknown query parameter filter[level]")):
        resp = await client.get(f"{base}?{query}", headers=auth(token))
        assert named in await error_of(resp, 400)
    resp = await client.get(f"{base}/not-an-id", headers=auth(token))
    await error_of(resp, 404)
    resp = await client.post(base, headers=auth(token), json={})
    audit_id = (await resp.json())["id"]
    resp = await client.get(f"{base}/{audit_id}", headers=auth(other_token))
    await error_of(resp, 404)
    resp = await client.get(f"/api/orgs/{other}/audits/{audit_id}", headers=auth(other_token))
    await error_of(resp, 404)
    await finished(client, org, token, audit_id)
