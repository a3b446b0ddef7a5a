"""Stacks and accounts through HTTP, and the policy group metadata counters."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.factories import insert_pack_version, policy
from tests.group_api import GroupApi, error_of, resources, stack_ref
from tests.helpers import auth


async def _api(client: TestClient, new_org) -> GroupApi:  # type: ignore[no-untyped-def]
    org, token = await new_org()
    return GroupApi(client, org, token)


async def test_put_registers_and_replaces_resources(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    resp = await api.put_stack("web", "prod")
    assert resp.status == 201
    created = await resp.json()
    assert (created["routingProject"], created["name"], created["resourceCount"]) == (
        "web", "prod", 0)
    resp = await api.put_stack("web", "prod", resources(3))
    assert resp.status == 200
    assert (await resp.json())["resourceCount"] == 3
    # without a body the last known resources stay
    assert (await (await api.put_stack("web", "prod")).json())["resourceCount"] == 3
    stack = await (await client.get(f"/api/stacks/{api.org}/web/prod",
                                    headers=api.headers)).json()
    assert stack["orgName"] == api.org
    assert [r["name"] for r in stack["resources"]] == ["b0", "b1", "b2"]
    assert stack["lastEvaluation"] is None
    resp = await api.put_stack("web", "prod", [])
    assert (await resp.json())["resourceCount"] == 0


async def test_get_stack_shows_the_groups_that_apply(client: TestClient, new_org,
                                                     pool) -> None:
    api = await _api(client, new_org)
    await api.put_stack("web", "prod")
    url = f"/api/stacks/{api.org}/web/prod"
    stack = await (await client.get(url, headers=api.headers)).json()
    assert [(g["name"], g["implicit"]) for g in stack["policyGroups"]] == [
        ("default-policy-group", True)]

    await insert_pack_version(pool, api.org, "base", [policy("p")], version_tag="1")
    await api.create(name="prod-rules", mode="preventative")
    await api.create(name="watch", mode="audit")
    for group in ("prod-rules", "watch"):
        resp = await api.patch(group, {"addStack": stack_ref("web", "prod"),
                                       "addPolicyPack": {"name": "base", "version": 1}})
        assert resp.status == 204
    groups = (await (await client.get(f"{url}/policygroups", headers=api.headers)).json()
              )["policyGroups"]
    assert [(g["name"], g["mode"], g["implicit"]) for g in groups] == [
        ("prod-rules", "preventative", False), ("watch", "audit", False)]
    assert groups[0]["appliedPolicyPacks"][0]["versionTag"] == "1"
    stack = await (await client.get(url, headers=api.headers)).json()
    assert [g["name"] for g in stack["policyGroups"]] == ["prod-rules", "watch"]


async def test_stack_refusals(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    resp = await client.get(f"/api/stacks/{api.org}/web/ghost", headers=api.headers)
    assert await error_of(resp, 404) == "Stack 'web/ghost' not found"
    resp = await client.get(f"/api/stacks/{api.org}/web/ghost/policygroups",
                            headers=api.headers)
    assert resp.status == 404
    assert (await error_of(await api.put_stack("we b", "prod"), 400)).startswith("project:")
    assert (await error_of(await api.put_stack("web", "pr@d"), 400)).startswith("stack:")
    resp = await api.put_stack("web", "prod", [{"type": "aws:s3/bucket:Bucket"}])
    assert "resources.0.urn" in await error_of(resp, 400)
    resp = await client.put(f"/api/stacks/{api.org}/web/prod", json={"resource": []},
                            headers=api.headers)
    assert "resource: unknown field" in await error_of(resp, 400)
    _other, other_token = await new_org()
    resp = await client.put(f"/api/stacks/{api.org}/web/prod", headers=auth(other_token))
    assert resp.status == 404


async def test_list_stacks_is_paged(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    for name in ("c", "a", "b"):
        await api.put_stack("web", name)
    await api.put_stack("api", "z")
    url = f"/api/orgs/{api.org}/stacks"
    listed = await (await client.get(url, headers=api.headers)).json()
    assert [(s["routingProject"], s["name"]) for s in listed["stacks"]] == [
        ("api", "z"), ("web", "a"), ("web", "b"), ("web", "c")]
    resp = await client.get(url, params={"page[size]": "3", "page[number]": "1"},
                            headers=api.headers)
    page = await resp.json()
    assert [s["name"] for s in page["stacks"]] == ["c"]
    assert page["meta"]["page"] == {"type": "number_size", "number": 1, "size": 3,
                                    "total": 4, "first_number": 0, "last_number": 1,
                                    "next_number": None, "prev_number": 0}
    assert "page%5Bnumber%5D=0" in page["links"]["prev"] or \
        "page[number]=0" in page["links"]["prev"]
    assert page["links"]["next"] is None
    for bad in ({"page[size]": "0"}, {"page[size]": "1001"}, {"page[number]": "x"},
                {"filter[project]": "web"}):
        message = await error_of(await client.get(url, params=bad, headers=api.headers), 400)
        assert next(iter(bad)) in message
    doubled = await client.get(f"{url}?page[size]=1&page[size]=2", headers=api.headers)
    assert "page[size]: given more than once" in await error_of(doubled, 400)


async def test_accounts(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    resp = await api.add_account("aws-prod", id="123456789012", providerVersion="6.0.0",
                                 providerEnvRef="proj/creds@2", scheduledScanEnabled=True,
                                 agentPoolID="pool-1", providerConfig={"region": "eu-west-1"},
                                 ownedBy={"name": "Ada", "githubLogin": "ada",
                                          "avatarUrl": "https://example.com/a.png"})
    assert resp.status == 201
    account = await resp.json()
    assert account == {"id": "123456789012", "name": "aws-prod",
                       "ownedBy": {"name": "Ada", "githubLogin": "ada",
                                   "avatarUrl": "https://example.com/a.png"},
                       "provider": "aws", "scheduledScanEnabled": True,
                       "providerVersion": "6.0.0", "providerEnvRef": "proj/creds@2",
                       "agentPoolID": "pool-1", "providerConfig": {"region": "eu-west-1"}}
    minimal = await (await api.add_account("gcp")).json()
    assert minimal["scheduledScanEnabled"] is False and minimal["id"]
    assert "providerVersion" not in minimal
    url = f"/api/orgs/{api.org}/accounts"
    assert await (await client.get(f"{url}/aws-prod", headers=api.headers)).json() == account
    listed = await (await client.get(url, headers=api.headers)).json()
    assert [a["name"] for a in listed["accounts"]] == ["aws-prod", "gcp"]
    assert listed["meta"]["page"]["total"] == 2
    assert "unknown query parameter filter[provider]" in await error_of(
        await client.get(f"{url}?filter[provider]=aws", headers=api.headers), 400)
    assert await error_of(await api.add_account("gcp"), 409) == "Account 'gcp' already exists"
    assert "provider" in await error_of(await client.post(
        url, json={"name": "x"}, headers=api.headers), 400)
    assert "scheduledScanEnabled" in await error_of(await api.add_account(
        "x", scheduledScanEnabled="yes"), 400)
    assert (await client.delete(f"{url}/gcp", headers=api.headers)).status == 204
    assert await error_of(await client.get(f"{url}/gcp", headers=api.headers), 404) == \
        "Account 'gcp' not found"
    assert (await client.delete(f"{url}/gcp", headers=api.headers)).status == 404


async def test_deleting_an_account_removes_it_from_its_groups(client: TestClient,
                                                              new_org) -> None:
    api = await _api(client, new_org)
    await api.add_account("aws-prod")
    await api.create(name="clouds", entityType="accounts")
    await api.patch("clouds", {"addInsightsAccount": {"name": "aws-prod"}})
    resp = await client.delete(f"/api/orgs/{api.org}/accounts/aws-prod", headers=api.headers)
    assert resp.status == 204
    assert (await api.get("clouds"))["accounts"] == []
    assert (await api.summaries())["clouds"]["numAccounts"] == 0


async def test_members_read_but_do_not_write(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    resp = await client.post(f"/api/orgs/{api.org}/tokens", json={"role": "member"},
                             headers=api.headers)
    member = auth((await resp.json())["token"])
    assert (await client.get(api.base, headers=member)).status == 200
    assert (await client.get(f"{api.base}/metadata", headers=member)).status == 200
    assert (await client.post(api.base, json={"name": "g"}, headers=member)).status == 403
    assert (await client.put(f"/api/stacks/{api.org}/w/s", headers=member)).status == 403
    resp = await client.patch(f"{api.base}/default-policy-group", json={"agentPoolId": "x"},
                              headers=member)
    assert resp.status == 403


async def test_metadata_counts_real_members_and_resources(client: TestClient, new_org,
                                                          pool) -> None:
    api = await _api(client, new_org)
    assert await api.metadata() == dict.fromkeys((
        "ProtectedStacks", "ProtectedStackResources", "PreventativeStacks",
        "PreventativeStackResources", "AuditStacks", "AuditStackResources", "TotalStacks",
        "TotalStackResources", "ProtectedAccounts", "ProtectedAccountResources",
        "TotalAccounts", "TotalAccountResources"), 0)
    await api.put_stack("web", "a", resources(1))
    await api.put_stack("web", "b", resources(2))
    await api.put_stack("web", "c", resources(4))
    await api.put_stack("web", "d", resources(8))
    await api.add_account("aws")
    await api.add_account("gcp")
    await pool.execute("UPDATE accounts SET resource_count = 16 WHERE name = 'aws' AND "
                       "org_id = (SELECT id FROM orgs WHERE name = $1)", api.org)
    await pool.execute("UPDATE accounts SET resource_count = 32 WHERE name = 'gcp' AND "
                       "org_id = (SELECT id FROM orgs WHERE name = $1)", api.org)
    await insert_pack_version(pool, api.org, "base", [policy("p")], version_tag="1")
    pack = {"name": "base", "version": 1}
    # a: preventative group; b: audit group; c: both; d: only the default group,
    # which applies no pack and so protects nothing
    await api.create(name="prev")
    await api.create(name="aud", mode="audit")
    await api.create(name="empty", mode="audit")
    await api.batch("prev", [{"addPolicyPack": pack}, {"addStack": stack_ref("web", "a")},
                             {"addStack": stack_ref("web", "c")}])
    await api.batch("aud", [{"addPolicyPack": pack}, {"addStack": stack_ref("web", "b")},
                            {"addStack": stack_ref("web", "c")}])
    await api.patch("empty", {"addStack": stack_ref("web", "d")})
    await api.patch("default-account-policy-group", {"addPolicyPack": pack})
    await api.create(name="clouds", entityType="accounts")
    await api.patch("clouds", {"addInsightsAccount": {"name": "gcp"}})
    assert await api.metadata() == {
        "ProtectedStacks": 3, "ProtectedStackResources": 7,
        "PreventativeStacks": 2, "PreventativeStackResources": 5,
        "AuditStacks": 2, "AuditStackResources": 6,
        "TotalStacks": 4, "TotalStackResources": 15,
        "ProtectedAccounts": 1, "ProtectedAccountResources": 16,
        "TotalAccounts": 2, "TotalAccountResources": 48}
