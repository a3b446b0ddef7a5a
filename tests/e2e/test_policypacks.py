"""Policy packs through HTTP: publish, list, get, delete, and every refusal."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from opa_client.errors import PolicyNotFoundError

from api.app import create_app
from gavel.opa import opa_client
from gavel.rego import place_module, policy_id, policy_package
from gavel.settings import Settings
from tests.helpers import auth
from tests.worker_process import free_port

EXAMPLE_PACK = Path(__file__).resolve().parents[2] / "examples" / "aws-baseline.json"

PUBLIC_BUCKET = """package acme.buckets

# a comment before the rule
violations contains v if {
    some r in input.resources
    r.properties.acl == "public-read"
    v := {"message": sprintf("bucket %s is public", [r.name]), "urn": r.urn}
}
"""

NEEDS_TAGS = """package acme.tags

default_tags := ["owner"]

violations contains v if {
    some r in input.resources
    some tag in object.get(input.config, "requiredTags", default_tags)
    not r.properties.tags[tag]
    v := {"message": sprintf("%s lacks tag %s", [r.name, tag]), "urn": r.urn}
}
"""

TAGS_SCHEMA = {"type": "object",
               "properties": {"requiredTags": {"type": "array", "items": {"type": "string"}}}}


def pack(name: str = "baseline", tag: str = "v1", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name, "displayName": "Baseline", "versionTag": tag,
        "policies": [
            {"name": "no-public-buckets", "description": "Buckets are private",
             "enforcementLevel": "mandatory", "rego": PUBLIC_BUCKET},
            {"name": "required-tags", "description": "Resources carry tags",
             "enforcementLevel": "advisory", "configSchema": TAGS_SCHEMA, "rego": NEEDS_TAGS},
        ]}
    body.update(overrides)
    return body


def with_policy(index: int, **changes: Any) -> dict[str, Any]:
    body = pack()
    body["policies"] = copy.deepcopy(body["policies"])
    body["policies"][index].update(changes)
    return body


async def publish(client: TestClient, org: str, token: str,
                  body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    resp = await client.post(f"/api/orgs/{org}/policypacks", headers=auth(token), json=body)
    return resp.status, await resp.json()


async def listed(client: TestClient, org: str, token: str) -> list[dict[str, Any]]:
    resp = await client.get(f"/api/orgs/{org}/policypacks", headers=auth(token))
    assert resp.status == 200
    return (await resp.json())["policyPacks"]


async def refused(client: TestClient, org: str, token: str, body: dict[str, Any],
                  status: int = 400) -> str:
    """Publish must answer ``status`` and store nothing; return the message."""
    code, answer = await publish(client, org, token, body)
    assert code == status, answer
    assert answer["code"] == status
    assert await listed(client, org, token) == []
    return str(answer["message"])


async def test_publish_list_and_get(client: TestClient, new_org) -> None:
    org, token = await new_org()
    assert await publish(client, org, token, pack(tag="v1")) == (
        201, {"name": "baseline", "version": 1, "versionTag": "v1"})
    assert await publish(client, org, token, pack(tag="v2", displayName="Baseline 2")) == (
        201, {"name": "baseline", "version": 2, "versionTag": "v2"})
    await publish(client, org, token, pack(name="other", tag="1.0.0"))

    assert await listed(client, org, token) == [
        {"name": "baseline", "displayName": "Baseline 2", "versions": [1, 2],
         "versionTags": ["v1", "v2"]},
        {"name": "other", "displayName": "Baseline", "versions": [1],
         "versionTags": ["1.0.0"]}]

    resp = await client.get(f"/api/orgs/{org}/policypacks/baseline/versions/1",
                            headers=auth(token))
    assert resp.status == 200
    version = await resp.json()
    assert version["createdAt"]
    assert {k: v for k, v in version.items() if k != "createdAt"} == {
        "name": "baseline", "displayName": "Baseline", "version": 1, "versionTag": "v1",
        "policies": [
            {"name": "no-public-buckets", "description": "Buckets are private",
             "enforcementLevel": "mandatory", "configSchema": None, "rego": PUBLIC_BUCKET},
            {"name": "required-tags", "description": "Resources carry tags",
             "enforcementLevel": "advisory", "configSchema": TAGS_SCHEMA,
             "rego": NEEDS_TAGS}]}


async def test_defaults_of_optional_fields(client: TestClient, new_org) -> None:
    org, token = await new_org()
    body = {"name": "minimal", "versionTag": "a",
            "policies": [{"name": "p", "rego": PUBLIC_BUCKET}]}
    assert (await publish(client, org, token, body))[0] == 201
    version = await (await client.get(f"/api/orgs/{org}/policypacks/minimal/versions/1",
                                      headers=auth(token))).json()
    assert version["displayName"] == "minimal"
    assert version["policies"][0] == {"name": "p", "description": "",
                                      "enforcementLevel": "advisory",
                                      "configSchema": None, "rego": PUBLIC_BUCKET}


async def test_duplicate_version_tag_is_a_conflict(client: TestClient, new_org) -> None:
    org, token = await new_org()
    assert (await publish(client, org, token, pack(tag="v1")))[0] == 201
    code, answer = await publish(client, org, token, pack(tag="v1"))
    assert code == 409
    assert answer == {"code": 409, "message": "policy pack 'baseline' already has a "
                                              "version tagged 'v1'"}
    # the refused publish did not use up a version number
    assert (await publish(client, org, token, pack(tag="v2")))[1]["version"] == 2
    assert (await listed(client, org, token))[0]["versions"] == [1, 2]


async def test_concurrent_publishes_get_distinct_versions(client: TestClient,
                                                          new_org) -> None:
    org, token = await new_org()
    answers = await asyncio.gather(*(publish(client, org, token, pack(tag=f"t{i}"))
                                     for i in range(6)))
    assert [code for code, _ in answers] == [201] * 6
    assert sorted(a["version"] for _, a in answers) == [1, 2, 3, 4, 5, 6]


async def test_syntax_error_answers_with_opa_message_and_line(client: TestClient,
                                                              new_org) -> None:
    org, token = await new_org()
    bad = "package acme.broken\n\nviolations contains v if {\n    v := {\"message\": 1 +}\n}\n"
    message = await refused(client, org, token, with_policy(1, rego=bad))
    assert message == "policies[1].rego: 4:25: rego_parse_error: unexpected } token"


async def test_compile_errors_are_refused(client: TestClient, new_org) -> None:
    org, token = await new_org()
    undefined_fn = ("package x\n\nviolations contains v if {\n"
                    "    v := {\"message\": no_such_function(1)}\n}\n")
    message = await refused(client, org, token, with_policy(0, rego=undefined_fn))
    assert message.startswith("policies[0].rego: 4:")
    assert "rego_type_error" in message and "no_such_function" in message

    unsafe = "package x\n\nviolations contains v if {\n    v == 1\n}\n"
    message = await refused(client, org, token, with_policy(0, rego=unsafe))
    assert message.startswith("policies[0].rego: ") and "unsafe" in message

    no_package = "violations contains 1 if true\n"
    message = await refused(client, org, token, with_policy(0, rego=no_package))
    assert message == ("policies[0].rego: the first statement must be a package "
                       "declaration")


async def test_module_must_define_violations_set(client: TestClient, new_org) -> None:
    org, token = await new_org()
    message = await refused(client, org, token,
                            with_policy(0, rego="package x\n\nallow := true\n"))
    assert "policies[0].rego: the module defines no rule named 'violations'" in message
    message = await refused(client, org, token,
                            with_policy(0, rego="package x\n\nviolations := 5\n"))
    assert message.startswith("policies[0].rego: 'violations' must be a set")
    message = await refused(client, org, token, with_policy(
        0, rego='package x\n\nviolations[k] := 1 if { k := "a" }\n'))
    assert message.startswith("policies[0].rego: 'violations' must be a set")


async def test_module_may_not_read_other_namespaces(client: TestClient, new_org) -> None:
    org, token = await new_org()
    spy = ("package x\n\nviolations contains v if {\n"
           "    some other in data.gavel.pv1.p0.violations\n"
           "    v := {\"message\": other.message}\n}\n")
    message = await refused(client, org, token, with_policy(0, rego=spy))
    assert message.startswith("policies[0].rego: the module reads data.gavel.pv1.p0")


async def test_module_may_not_define_the_loaded_marker(client: TestClient, new_org) -> None:
    org, token = await new_org()
    rego = PUBLIC_BUCKET + "\n__gavel_loaded := false\n"
    message = await refused(client, org, token, with_policy(0, rego=rego))
    assert message == "policies[0].rego: the rule name '__gavel_loaded' is reserved for Gavel"


async def test_modules_are_checked_in_the_check_opa(settings: Settings, new_org) -> None:
    org, token = await new_org()
    unreachable = f"http://127.0.0.1:{free_port()}"
    checks_only = settings.model_copy(update={"opa": settings.opa.model_copy(
        update={"url": unreachable, "check_url": settings.opa.checks_url})})
    async with TestClient(TestServer(create_app(checks_only))) as client:
        assert await publish(client, org, token, pack()) == (
            201, {"name": "baseline", "version": 1, "versionTag": "v1"})
        code, answer = await publish(client, org, token, with_policy(
            0, rego="package x\nviolations contains if {"))
        assert code == 400 and "rego_parse_error" in answer["message"], answer
        resp = await client.get("/readyz")
        checks = (await resp.json())["checks"]
        assert resp.status == 503
        assert checks["opa"]["ok"] is False and checks["opa-check"] == {"ok": True}

    no_checks = settings.model_copy(update={"opa": settings.opa.model_copy(
        update={"check_url": unreachable})})
    async with TestClient(TestServer(create_app(no_checks))) as client:
        code, answer = await publish(client, org, token, pack(tag="v2"))
        assert code == 503, answer
        assert answer["message"].startswith("OPA could not check the policies")


async def test_bad_config_schema_names_the_field(client: TestClient, new_org) -> None:
    org, token = await new_org()
    message = await refused(client, org, token,
                            with_policy(1, configSchema={"type": "no-such-type"}))
    assert message.startswith("policies[1].configSchema: not a valid JSON Schema")


async def test_unknown_fields_and_wrong_types(client: TestClient, new_org) -> None:
    org, token = await new_org()
    assert "colour: unknown field" in await refused(client, org, token, pack(colour="red"))
    assert "policies.0.severity: unknown field" in await refused(
        client, org, token, with_policy(0, severity="high"))
    assert "policies.0.enforcementLevel" in await refused(
        client, org, token, with_policy(0, enforcementLevel="strict"))
    assert "policies: " in await refused(client, org, token, pack(policies="all of them"))
    assert "policies: " in await refused(client, org, token, pack(policies=[]))
    assert "name: " in await refused(client, org, token, pack(name=7))
    assert "versionTag: " in await refused(client, org, token, pack(versionTag=""))
    assert "policies.1.rego: " in await refused(client, org, token, with_policy(1, rego=None))
    assert "policies.0.configSchema" in await refused(
        client, org, token, with_policy(0, configSchema=["not", "an", "object"]))
    body = pack()
    del body["versionTag"]
    assert "versionTag: Field required" in await refused(client, org, token, body)


async def test_names_are_validated(client: TestClient, new_org) -> None:
    org, token = await new_org()
    assert (await refused(client, org, token, pack(name="has space"))).startswith(
        "name: invalid policy pack name")
    assert (await refused(client, org, token, pack(name=".."))).startswith("name: ")
    assert (await refused(client, org, token, with_policy(0, name="a/b"))).startswith(
        "policies[0].name: invalid policy name")
    assert (await refused(client, org, token, with_policy(0, name="all"))).startswith(
        "policies[0].name: 'all' is reserved")
    assert await refused(client, org, token, with_policy(1, name="no-public-buckets")) == (
        "policies[1].name: duplicate policy name 'no-public-buckets' (also policies[0])")


async def test_get_missing_and_malformed_versions(client: TestClient, new_org) -> None:
    org, token = await new_org()
    await publish(client, org, token, pack())
    base = f"/api/orgs/{org}/policypacks"
    resp = await client.get(f"{base}/baseline/versions/2", headers=auth(token))
    assert resp.status == 404
    assert await resp.json() == {"code": 404,
                                 "message": "Policy pack 'baseline' version 2 not found"}
    assert (await client.get(f"{base}/nope/versions/1", headers=auth(token))).status == 404
    resp = await client.get(f"{base}/baseline/versions/latest", headers=auth(token))
    assert resp.status == 400
    assert (await resp.json())["message"].startswith("version: must be a positive integer")
    assert (await client.delete(f"{base}/baseline/versions/9", headers=auth(token))).status \
        == 404


async def test_delete_versions(client: TestClient, new_org, settings: Settings,
                               pool: asyncpg.Pool) -> None:
    org, token = await new_org()
    base = f"/api/orgs/{org}/policypacks/baseline/versions"
    await publish(client, org, token, pack(tag="v1"))
    await publish(client, org, token, pack(tag="v2"))
    version_id = await pool.fetchval(
        """SELECT v.id FROM policy_pack_versions v JOIN policy_packs p ON p.id = v.pack_id
           JOIN orgs o ON o.id = p.org_id WHERE o.name = $1 AND v.version = 1""", org)
    async with opa_client(settings.opa) as opa:
        # as an evaluator would have loaded it
        await opa.update_policy_from_string(
            place_module(PUBLIC_BUCKET, policy_package(version_id, 0)),
            policy_id(version_id, 0), rego_compat=False)
        resp = await client.delete(f"{base}/1", headers=auth(token))
        assert resp.status == 204
        try:
            await opa.get_policy(policy_id(version_id, 0))
            raise AssertionError("the deleted version's module is still in OPA")
        except PolicyNotFoundError:
            pass

    assert (await client.get(f"{base}/1", headers=auth(token))).status == 404
    assert await listed(client, org, token) == [
        {"name": "baseline", "displayName": "Baseline", "versions": [2],
         "versionTags": ["v2"]}]
    assert (await client.delete(f"{base}/1", headers=auth(token))).status == 404
    assert (await client.delete(f"{base}/2", headers=auth(token))).status == 204
    assert await listed(client, org, token) == []


async def test_delete_of_applied_version_is_a_conflict(client: TestClient, new_org,
                                                       pool: asyncpg.Pool) -> None:
    org, token = await new_org()
    await publish(client, org, token, pack(tag="v1"))
    await pool.execute(
        """INSERT INTO policy_group_packs (group_id, pack_id, pack_version_id)
           SELECT g.id, p.id, v.id FROM orgs o
           JOIN policy_groups g ON g.org_id = o.id AND g.name = 'default-policy-group'
           JOIN policy_packs p ON p.org_id = o.id AND p.name = 'baseline'
           JOIN policy_pack_versions v ON v.pack_id = p.id AND v.version = 1
           WHERE o.name = $1""", org)
    resp = await client.delete(f"/api/orgs/{org}/policypacks/baseline/versions/1",
                               headers=auth(token))
    assert resp.status == 409
    assert await resp.json() == {
        "code": 409, "message": "policy pack 'baseline' version 1 is applied by policy "
                                "group(s) default-policy-group; remove it there first"}
    assert (await listed(client, org, token))[0]["versions"] == [1]


async def test_members_read_and_other_orgs_see_nothing(client: TestClient, new_org) -> None:
    org, admin = await new_org()
    _other, stranger = await new_org()
    await publish(client, org, admin, pack())
    resp = await client.post(f"/api/orgs/{org}/tokens", headers=auth(admin),
                             json={"role": "member"})
    member = (await resp.json())["token"]
    version = f"/api/orgs/{org}/policypacks/baseline/versions/1"

    assert len(await listed(client, org, member)) == 1
    assert (await client.get(version, headers=auth(member))).status == 200
    code, answer = await publish(client, org, member, pack(tag="v2"))
    assert (code, answer["code"]) == (403, 403)
    assert (await client.delete(version, headers=auth(member))).status == 403

    for resp in [await client.get(f"/api/orgs/{org}/policypacks", headers=auth(stranger)),
                 await client.get(version, headers=auth(stranger)),
                 await client.delete(version, headers=auth(stranger)),
                 await client.post(f"/api/orgs/{org}/policypacks", headers=auth(stranger),
                                   json=pack(tag="v3"))]:
        assert resp.status == 404
        assert await resp.json() == {"code": 404,
                                     "message": f"Organization '{org}' not found"}
    assert (await listed(client, org, admin))[0]["versions"] == [1]


async def test_example_pack_publishes(client: TestClient, new_org) -> None:
    org, token = await new_org()
    body = json.loads(EXAMPLE_PACK.read_text())
    assert await publish(client, org, token, body) == (
        201, {"name": "aws-baseline", "version": 1, "versionTag": body["versionTag"]})
    resp = await client.get(f"/api/orgs/{org}/policypacks/aws-baseline/versions/1",
                            headers=auth(token))
    assert (await resp.json())["policies"] == [{"configSchema": None, **policy}
                                               for policy in body["policies"]]
