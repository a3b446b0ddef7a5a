"""Applying policy pack versions to groups: lookup by version or tag, config checks."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.factories import insert_pack_version, policy
from tests.group_api import GroupApi, error_of

SIZE_SCHEMA = {"type": "object", "additionalProperties": False,
               "properties": {"maxSize": {"type": "integer", "minimum": 1},
                              "tags": {"type": "array", "items": {"type": "string"}}}}


async def _setup(client: TestClient, new_org, pool) -> GroupApi:  # type: ignore[no-untyped-def]
    org, token = await new_org()
    api = GroupApi(client, org, token)
    policies = [policy("sized", config_schema=SIZE_SCHEMA), policy("plain", level="mandatory")]
    await insert_pack_version(pool, org, "base", policies, version_tag="1.0.0",
                              display_name="Baseline")
    await insert_pack_version(pool, org, "base", policies, version_tag="2.0.0",
                              display_name="Baseline 2")
    assert (await api.create(name="g")).status == 204
    return api


async def _applied(api: GroupApi) -> list[dict]:
    return (await api.get("g"))["appliedPolicyPacks"]


async def test_pack_found_by_version_or_by_tag(client: TestClient, new_org, pool) -> None:
    api = await _setup(client, new_org, pool)
    resp = await api.patch("g", {"addPolicyPack": {"name": "base", "displayName": "x",
                                                   "version": 1, "versionTag": "1.0.0"}})
    assert resp.status == 204
    assert await _applied(api) == [{"name": "base", "displayName": "Baseline", "version": 1,
                                    "versionTag": "1.0.0", "config": {}, "environments": []}]
    resp = await api.patch("g", {"addPolicyPack": {"name": "base", "version": 0,
                                                   "versionTag": "2.0.0"}})
    assert resp.status == 204
    # each version shows the display name it was published with
    assert [(p["version"], p["versionTag"], p["displayName"]) for p in await _applied(api)] == [
        (2, "2.0.0", "Baseline 2")]
    assert (await api.summaries())["g"]["numEnabledPolicyPacks"] == 1


async def test_pack_lookup_refusals(client: TestClient, new_org, pool) -> None:
    api = await _setup(client, new_org, pool)
    message = await error_of(await api.patch("g", {"addPolicyPack": {
        "name": "base", "version": 1, "versionTag": "2.0.0"}}), 400)
    assert message.startswith("addPolicyPack.versionTag:")
    assert await error_of(await api.patch("g", {"addPolicyPack": {
        "name": "base", "versionTag": "9.9.9"}}), 404) == \
        "addPolicyPack: Policy Pack 'base' versionTag '9.9.9' not found"
    assert await error_of(await api.patch("g", {"addPolicyPack": {
        "name": "base", "version": 3}}), 404) == \
        "addPolicyPack: Policy Pack 'base' version 3 not found"
    assert "version" in await error_of(
        await api.patch("g", {"addPolicyPack": {"name": "base"}}), 400)
    assert await _applied(api) == []


async def test_adding_again_replaces_version_and_config(client: TestClient, new_org,
                                                        pool) -> None:
    api = await _setup(client, new_org, pool)
    first = {"name": "base", "version": 1, "config": {"all": "advisory"},
             "environments": ["proj/env"]}
    assert (await api.patch("g", {"addPolicyPack": first})).status == 204
    second = {"name": "base", "version": 2,
              "config": {"sized": {"enforcementLevel": "mandatory", "maxSize": 5}}}
    assert (await api.patch("g", {"addPolicyPack": second})).status == 204
    assert await _applied(api) == [{
        "name": "base", "displayName": "Baseline 2", "version": 2, "versionTag": "2.0.0",
        "config": {"sized": {"enforcementLevel": "mandatory", "maxSize": 5}},
        "environments": []}]


async def test_shorthand_config_is_stored_normalized(client: TestClient, new_org,
                                                     pool) -> None:
    api = await _setup(client, new_org, pool)
    pack = {"name": "base", "version": 1,
            "config": {"all": "disabled", "plain": "mandatory",
                       "sized": {"maxSize": 3, "tags": ["a"]}}}
    assert (await api.patch("g", {"addPolicyPack": pack})).status == 204
    assert (await _applied(api))[0]["config"] == {
        "all": {"enforcementLevel": "disabled"}, "plain": {"enforcementLevel": "mandatory"},
        "sized": {"maxSize": 3, "tags": ["a"]}}


async def test_config_refusals_name_the_policy_and_field(client: TestClient, new_org,
                                                         pool) -> None:
    api = await _setup(client, new_org, pool)

    async def refusal(config: dict) -> str:
        resp = await api.patch("g", {"addPolicyPack": {"name": "base", "version": 1,
                                                       "config": config}})
        return await error_of(resp, 400)

    message = await refusal({"sized": {"maxSize": 0}})
    assert message.startswith("addPolicyPack.config.sized.maxSize:"), message
    message = await refusal({"sized": {"maxSize": "big"}})
    assert message.startswith("addPolicyPack.config.sized.maxSize:"), message
    message = await refusal({"sized": {"colour": "red"}})
    assert message.startswith("addPolicyPack.config.sized:") and "colour" in message
    message = await refusal({"plain": {"limit": 3}})
    assert message.startswith("addPolicyPack.config.plain:") and "limit" in message
    message = await refusal({"ghost": "mandatory"})
    assert message.startswith("addPolicyPack.config.ghost:") and "no policy" in message
    message = await refusal({"plain": "blocking"})
    assert message.startswith("addPolicyPack.config.plain.enforcementLevel:")
    message = await refusal({"all": {"enforcementLevel": "advisory", "maxSize": 3}})
    assert message.startswith("addPolicyPack.config.all:")
    message = await refusal({"plain": 7})
    assert message.startswith("addPolicyPack.config.plain:")
    assert await _applied(api) == []


async def test_remove_policy_pack(client: TestClient, new_org, pool) -> None:
    api = await _setup(client, new_org, pool)
    assert (await api.patch("g", {"addPolicyPack": {"name": "base", "version": 1}})
            ).status == 204
    # another version than the one applied: nothing of it to remove
    for other in ({"version": 2}, {"versionTag": "2.0.0"}):
        resp = await api.patch("g", {"removePolicyPack": {"name": "base", **other}})
        assert resp.status == 204
        assert [p["version"] for p in await _applied(api)] == [1]
    # a version the pack does not have, or a tag that is not that version's
    assert await error_of(await api.patch("g", {"removePolicyPack": {
        "name": "base", "version": 9}}), 404) == \
        "removePolicyPack: Policy Pack 'base' version 9 not found"
    assert await error_of(await api.patch("g", {"removePolicyPack": {
        "name": "base", "versionTag": "9.9.9"}}), 404) == \
        "removePolicyPack: Policy Pack 'base' versionTag '9.9.9' not found"
    message = await error_of(await api.patch("g", {"removePolicyPack": {
        "name": "base", "version": 1, "versionTag": "2.0.0"}}), 400)
    assert message.startswith("removePolicyPack.versionTag:")
    assert [p["version"] for p in await _applied(api)] == [1]

    resp = await api.patch("g", {"removePolicyPack": {"name": "base", "version": 1,
                                                      "versionTag": "1.0.0"}})
    assert resp.status == 204
    assert await _applied(api) == []
    assert (await api.summaries())["g"]["numEnabledPolicyPacks"] == 0
    # by name alone, whichever version is applied
    assert (await api.patch("g", {"addPolicyPack": {"name": "base", "version": 2}})
            ).status == 204
    assert (await api.patch("g", {"removePolicyPack": {"name": "base"}})).status == 204
    assert await _applied(api) == []


async def test_pack_published_over_http_can_be_applied(client: TestClient, new_org) -> None:
    org, token = await new_org()
    api = GroupApi(client, org, token)
    pack = {"name": "published", "displayName": "Published", "versionTag": "0.1.0",
            "policies": [{**policy("sized", config_schema=SIZE_SCHEMA)}]}
    resp = await client.post(f"/api/orgs/{org}/policypacks", json=pack, headers=api.headers)
    assert resp.status == 201, await resp.text()
    version = (await resp.json())["version"]
    assert (await api.create(name="g")).status == 204
    resp = await api.patch("g", {"addPolicyPack": {
        "name": "published", "version": version, "versionTag": "0.1.0",
        "config": {"sized": {"enforcementLevel": "mandatory", "maxSize": 2}}}})
    assert resp.status == 204, await resp.text()
    resp = await api.patch("g", {"addPolicyPack": {
        "name": "published", "versionTag": "0.1.0", "config": {"sized": {"maxSize": -1}}}})
    assert (await error_of(resp, 400)).startswith("addPolicyPack.config.sized.maxSize:")
    assert [(p["displayName"], p["config"]) for p in await _applied(api)] == [
        ("Published", {"sized": {"enforcementLevel": "mandatory", "maxSize": 2}})]
