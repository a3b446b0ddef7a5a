"""Policy groups through HTTP: create, list, get, PATCH, batch, delete, defaults."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.factories import insert_pack_version, policy
from tests.group_api import GroupApi, error_of, stack_ref
from tests.helpers import auth

DEFAULT = "default-policy-group"
DEFAULT_ACCOUNTS = "default-account-policy-group"


async def _api(client: TestClient, new_org) -> GroupApi:  # type: ignore[no-untyped-def]
    org, token = await new_org()
    return GroupApi(client, org, token)


async def test_every_org_has_two_default_groups(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    groups = await api.summaries()
    assert groups == {
        DEFAULT: {"name": DEFAULT, "isOrgDefault": True, "numStacks": 0, "numAccounts": 0,
                  "entityType": "stacks", "mode": "preventative",
                  "numEnabledPolicyPacks": 0},
        DEFAULT_ACCOUNTS: {"name": DEFAULT_ACCOUNTS, "isOrgDefault": True, "numStacks": 0,
                           "numAccounts": 0, "entityType": "accounts", "mode": "audit",
                           "numEnabledPolicyPacks": 0},
    }


async def test_v1_body_creates_a_preventative_stacks_group(client: TestClient,
                                                           new_org) -> None:
    api = await _api(client, new_org)
    resp = await api.create(name="prod.web_1-a")
    assert resp.status == 204
    assert await resp.read() == b""
    assert await api.get("prod.web_1-a") == {
        "name": "prod.web_1-a", "isOrgDefault": False, "entityType": "stacks",
        "mode": "preventative", "stacks": [], "accounts": [], "appliedPolicyPacks": [],
        "agentPoolId": ""}


async def test_create_with_entity_type_mode_and_agent_pool(client: TestClient,
                                                           new_org) -> None:
    api = await _api(client, new_org)
    assert (await api.create(name="clouds", entityType="accounts")).status == 204
    assert (await api.create(name="watch", entityType="stacks", mode="audit",
                             agentPoolId="pool-7")).status == 204
    clouds, watch = await api.get("clouds"), await api.get("watch")
    assert (clouds["entityType"], clouds["mode"]) == ("accounts", "audit")
    assert (watch["entityType"], watch["mode"], watch["agentPoolId"]) == (
        "stacks", "audit", "pool-7")
    summaries = await api.summaries()
    assert summaries["clouds"]["entityType"] == "accounts"
    assert summaries["watch"]["mode"] == "audit"


async def test_create_refusals(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    assert "entityType" in await error_of(
        await api.create(name="g", entityType="buckets"), 400)
    assert "mode" in await error_of(await api.create(name="g", mode="strict"), 400)
    assert "name" in await error_of(await api.create(name="has space"), 400)
    assert "name" in await error_of(await api.create(name="a/b"), 400)
    assert "name" in await error_of(await api.create(name=""), 400)
    assert "name" in await error_of(await api.create(name="metadata"), 400)
    assert "name" in await error_of(await api.create(entityType="stacks"), 400)
    assert (await api.create(name="g")).status == 204
    assert await error_of(await api.create(name="g"), 409) == "Policy Group 'g' already exists"
    assert (await api.create(name="default-policy-group")).status == 409
    _other, other_token = await new_org()
    resp = await client.post(f"/api/orgs/{api.org}/policygroups", json={"name": "x"},
                             headers=auth(other_token))
    assert await error_of(resp, 404) == f"Organization '{api.org}' not found"


async def test_unknown_group_is_404_everywhere(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    resp = await client.get(f"{api.base}/nope", headers=api.headers)
    assert await error_of(resp, 404) == "Policy Group 'nope' not found"
    assert (await api.patch("nope", {"newName": "x"})).status == 404
    assert (await api.batch("nope", [{"newName": "x"}])).status == 404
    assert (await api.delete("nope")).status == 404


async def test_stacks_not_in_another_group_belong_to_the_default(client: TestClient,
                                                                 new_org) -> None:
    api = await _api(client, new_org)
    for stack in ("a", "b"):
        assert (await api.put_stack("web", stack)).status == 201
    default = await api.get(DEFAULT)
    assert default["stacks"] == [stack_ref("web", "a"), stack_ref("web", "b")]
    assert (await api.summaries())[DEFAULT]["numStacks"] == 2

    assert (await api.create(name="prod")).status == 204
    assert (await api.patch("prod", {"addStack": stack_ref("web", "a")})).status == 204
    assert (await api.get(DEFAULT))["stacks"] == [stack_ref("web", "b")]
    assert (await api.get("prod"))["stacks"] == [stack_ref("web", "a")]
    summaries = await api.summaries()
    assert (summaries[DEFAULT]["numStacks"], summaries["prod"]["numStacks"]) == (1, 1)

    # explicit membership of the default group is allowed and keeps it there
    assert (await api.patch(DEFAULT, {"addStack": stack_ref("web", "a")})).status == 204
    assert (await api.get(DEFAULT))["stacks"] == [stack_ref("web", "a"), stack_ref("web", "b")]
    assert (await api.summaries())[DEFAULT]["numStacks"] == 2

    assert (await api.patch(DEFAULT, {"removeStack": stack_ref("web", "a")})).status == 204
    assert (await api.patch("prod", {"removeStack": stack_ref("web", "a")})).status == 204
    assert (await api.get(DEFAULT))["stacks"] == [stack_ref("web", "a"), stack_ref("web", "b")]
    assert (await api.get("prod"))["stacks"] == []

    # a stack in no other group cannot leave the default group: that would change nothing
    assert (await api.patch(DEFAULT, {"addStack": stack_ref("web", "b")})).status == 204
    for stack in ("a", "b"):
        assert await error_of(await api.patch(DEFAULT, {"removeStack": stack_ref("web", stack)}),
                              400) == (f"removeStack: Stack 'web/{stack}' is in the default "
                                       "Policy Group because it is in no other; add it to "
                                       "another Policy Group to take it out")
    assert (await api.get(DEFAULT))["stacks"] == [stack_ref("web", "a"), stack_ref("web", "b")]


async def test_accounts_join_and_leave_account_groups(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    for name in ("aws-prod", "aws-dev"):
        assert (await api.add_account(name)).status == 201
    assert (await api.get(DEFAULT_ACCOUNTS))["accounts"] == ["aws-dev", "aws-prod"]
    assert (await api.create(name="clouds", entityType="accounts")).status == 204
    resp = await api.patch("clouds", {"addInsightsAccount": {"name": "aws-prod"}})
    assert resp.status == 204
    assert (await api.get("clouds"))["accounts"] == ["aws-prod"]
    assert (await api.get(DEFAULT_ACCOUNTS))["accounts"] == ["aws-dev"]
    summaries = await api.summaries()
    assert (summaries["clouds"]["numAccounts"], summaries[DEFAULT_ACCOUNTS]["numAccounts"]) \
        == (1, 1)
    assert summaries["clouds"]["numStacks"] == 0
    resp = await api.patch("clouds", {"removeInsightsAccount": {"name": "aws-prod"}})
    assert resp.status == 204
    assert (await api.get("clouds"))["accounts"] == []
    assert (await api.get(DEFAULT_ACCOUNTS))["accounts"] == ["aws-dev", "aws-prod"]
    assert await error_of(await api.patch(DEFAULT_ACCOUNTS, {
        "removeInsightsAccount": {"name": "aws-dev"}}), 400) == (
        "removeInsightsAccount: Account 'aws-dev' is in the default Policy Group because it "
        "is in no other; add it to another Policy Group to take it out")


async def test_account_found_by_name_and_id(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    account = await (await api.add_account("gcp-main", id="acct-1")).json()
    assert (await api.create(name="clouds", entityType="accounts")).status == 204
    full = {**account, "scheduledScanEnabled": True}
    assert (await api.patch("clouds", {"addInsightsAccount": full})).status == 204
    # the account exists: another id is a bad value of the field, not a missing account
    resp = await api.patch("clouds", {"addInsightsAccount": {"name": "gcp-main",
                                                             "id": "other"}})
    assert await error_of(resp, 400) == (
        "addInsightsAccount.id: Account 'gcp-main' has id 'acct-1', not 'other'")
    resp = await api.patch("clouds", {"removeInsightsAccount": {"name": "gcp-main",
                                                                "id": "other"}})
    assert await error_of(resp, 400) == (
        "removeInsightsAccount.id: Account 'gcp-main' has id 'acct-1', not 'other'")
    assert (await api.get("clouds"))["accounts"] == ["gcp-main"]
    resp = await api.patch("clouds", {"addInsightsAccount": {"name": "gcp-other",
                                                             "id": "acct-1"}})
    assert await error_of(resp, 404) == "addInsightsAccount: Account 'gcp-other' not found"
    resp = await api.patch("clouds", {"removeInsightsAccount": {"name": "gcp-main",
                                                                "id": "acct-1"}})
    assert resp.status == 204
    assert (await api.get("clouds"))["accounts"] == []


async def test_entity_type_mismatch_is_400(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    await api.put_stack("web", "prod")
    await api.add_account("aws-prod")
    assert (await api.create(name="clouds", entityType="accounts")).status == 204
    assert (await api.create(name="stacks-only")).status == 204
    message = await error_of(
        await api.patch("clouds", {"addStack": stack_ref("web", "prod")}), 400)
    assert message.startswith("addStack:") and "accounts" in message
    message = await error_of(
        await api.patch("stacks-only", {"addInsightsAccount": {"name": "aws-prod"}}), 400)
    assert message.startswith("addInsightsAccount:") and "stacks" in message
    assert (await api.patch(DEFAULT_ACCOUNTS, {"addStack": stack_ref("web", "prod")})
            ).status == 400


async def test_missing_members_are_404(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    assert (await api.create(name="g")).status == 204
    assert (await api.create(name="a", entityType="accounts")).status == 204
    assert await error_of(await api.patch("g", {"addStack": stack_ref("web", "ghost")}),
                          404) == "addStack: Stack 'web/ghost' not found"
    assert await error_of(await api.patch("g", {"removeStack": stack_ref("web", "ghost")}),
                          404) == "removeStack: Stack 'web/ghost' not found"
    assert await error_of(await api.patch("a", {"addInsightsAccount": {"name": "ghost"}}),
                          404) == "addInsightsAccount: Account 'ghost' not found"
    assert await error_of(
        await api.patch("g", {"addPolicyPack": {"name": "ghost", "version": 1}}),
        404) == "addPolicyPack: Policy Pack 'ghost' not found"
    assert await error_of(
        await api.patch("g", {"removePolicyPack": {"name": "ghost"}}),
        404) == "removePolicyPack: Policy Pack 'ghost' not found"


async def test_patch_applies_every_field_or_none(client: TestClient, new_org, pool) -> None:
    api = await _api(client, new_org)
    await api.put_stack("web", "prod")
    await insert_pack_version(pool, api.org, "baseline", [policy("p")], version_tag="1.0")
    assert (await api.create(name="g")).status == 204
    before = await api.get("g")
    failing = {"newName": "renamed", "addStack": stack_ref("web", "prod"),
               "agentPoolId": "pool-1",
               "addPolicyPack": {"name": "baseline", "version": 9}}
    assert "version 9 not found" in await error_of(await api.patch("g", failing), 404)
    assert await api.get("g") == before
    assert "renamed" not in await api.summaries()

    del failing["addPolicyPack"]["version"]
    failing["addPolicyPack"]["versionTag"] = "1.0"
    assert (await api.patch("g", failing)).status == 204
    after = await api.get("renamed")
    assert after["stacks"] == [stack_ref("web", "prod")]
    assert after["agentPoolId"] == "pool-1"
    assert [(p["name"], p["version"]) for p in after["appliedPolicyPacks"]] == [("baseline", 1)]
    assert (await client.get(f"{api.base}/g", headers=api.headers)).status == 404


async def test_rename_refusals(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    assert (await api.create(name="a")).status == 204
    assert (await api.create(name="b")).status == 204
    # Pulumi's PATCH answers 400 or 404 (its POST 409 for a name taken)
    assert await error_of(await api.patch("a", {"newName": "b"}), 400) == \
        "newName: Policy Group 'b' already exists"
    assert (await api.patch("a", {"newName": DEFAULT})).status == 400
    assert "default" in await error_of(await api.patch(DEFAULT, {"newName": "x"}), 400)
    assert "newName" in await error_of(await api.patch("a", {"newName": "bad name"}), 400)
    assert (await api.patch("a", {"newName": "a"})).status == 204
    assert set(await api.summaries()) == {DEFAULT, DEFAULT_ACCOUNTS, "a", "b"}


async def test_agent_pool_is_set_cleared_or_left(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    await api.put_stack("web", "prod")
    assert (await api.create(name="g")).status == 204
    assert (await api.patch("g", {"agentPoolId": "pool-9"})).status == 204
    assert (await api.get("g"))["agentPoolId"] == "pool-9"
    assert (await api.patch("g", {"addStack": stack_ref("web", "prod")})).status == 204
    assert (await api.get("g"))["agentPoolId"] == "pool-9"
    assert (await api.patch("g", {"agentPoolId": ""})).status == 204
    assert (await api.get("g"))["agentPoolId"] == ""


async def test_empty_update_is_refused(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    assert (await api.create(name="g")).status == 204
    assert "no change" in await error_of(await api.patch("g", {}), 400)
    assert "update 1: " in await error_of(await api.batch("g", [{"agentPoolId": "x"}, {}]),
                                          400)


async def test_delete(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    await api.put_stack("web", "prod")
    assert await error_of(await api.delete(DEFAULT), 400) == \
        "Cannot delete the default Policy Group"
    assert await error_of(await api.delete(DEFAULT_ACCOUNTS), 400) == \
        "Cannot delete the default Policy Group"
    assert (await api.create(name="g")).status == 204
    assert (await api.patch("g", {"addStack": stack_ref("web", "prod")})).status == 204
    assert (await api.get(DEFAULT))["stacks"] == []
    resp = await api.delete("g")
    assert resp.status == 204
    assert (await api.delete("g")).status == 404
    # the stack is back in the default group
    assert (await api.get(DEFAULT))["stacks"] == [stack_ref("web", "prod")]


async def test_batch_applies_in_order_and_atomically(client: TestClient, new_org,
                                                     pool) -> None:
    api = await _api(client, new_org)
    for stack in ("a", "b", "c"):
        await api.put_stack("web", stack)
    await insert_pack_version(pool, api.org, "baseline", [policy("p")], version_tag="v1")
    await insert_pack_version(pool, api.org, "baseline", [policy("p")], version_tag="v2")
    assert (await api.create(name="g")).status == 204
    resp = await api.batch("g", [
        {"addStack": stack_ref("web", "a")},
        {"addPolicyPack": {"name": "baseline", "version": 1}},
        {"addPolicyPack": {"name": "baseline", "version": 2}},
        {"newName": "g2"},
        {"addStack": stack_ref("web", "b"), "removeStack": stack_ref("web", "a")},
    ])
    assert resp.status == 204
    group = await api.get("g2")
    assert group["stacks"] == [stack_ref("web", "b")]
    assert [(p["name"], p["version"]) for p in group["appliedPolicyPacks"]] == [
        ("baseline", 2)]

    resp = await api.batch("g2", [
        {"addStack": stack_ref("web", "c")},
        {"newName": "g3"},
        {"addStack": stack_ref("web", "ghost")},
    ])
    assert await error_of(resp, 404) == "update 2: addStack: Stack 'web/ghost' not found"
    assert await api.get("g2") == group

    assert "at least 1 item" in await error_of(await api.batch("g2", []), 400)
    assert (await api.batch("g2", {"newName": "x"})).status == 400
    message = await error_of(await api.batch("g2", [{"addStack": {"name": "c"}}]), 400)
    assert "0.addStack.routingProject" in message
