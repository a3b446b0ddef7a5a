"""Bad input to the policy group, stack and account endpoints answers 400 naming the
field (or 404 for a path no entity can have), never 500."""

from __future__ import annotations

import io
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.group_api import GroupApi, error_of

BAD_BODIES: list[tuple[str, str, Any, str]] = [
    # (method, path under the org, body, text the message must contain)
    ("POST", "policygroups", {"name": 5}, "name"),
    ("POST", "policygroups", {"name": "g", "entityType": "buckets"}, "entityType"),
    ("POST", "policygroups", {"name": "g", "mode": "STRICT"}, "mode"),
    ("POST", "policygroups", {"name": "g", "colour": "red"}, "colour: unknown field"),
    ("POST", "policygroups", {"name": "g\u0000"}, "name"),
    ("POST", "policygroups", {"name": "x" * 101}, "name"),
    ("POST", "policygroups", {"name": "g", "agentPoolId": "p\u0000"}, "agentPoolId"),
    ("POST", "policygroups", [], "body"),
    ("PATCH", "policygroups/g", {"newName": ["x"]}, "newName"),
    ("PATCH", "policygroups/g", {"addStack": "web/prod"}, "addStack"),
    ("PATCH", "policygroups/g", {"addStack": {"name": "p", "routingProject": 3}},
     "addStack.routingProject"),
    ("PATCH", "policygroups/g", {"addStack": {"name": "p", "routingProject": "w",
                                              "org": "o"}}, "addStack.org: unknown field"),
    ("PATCH", "policygroups/g", {"addPolicyPack": {"name": "p", "version": "1"}},
     "addPolicyPack.version"),
    ("PATCH", "policygroups/g", {"addPolicyPack": {"name": "p", "version": -1}},
     "addPolicyPack.version"),
    ("PATCH", "policygroups/g", {"addPolicyPack": {"name": "p", "version": 2**40}},
     "addPolicyPack.version"),
    ("PATCH", "policygroups/g", {"addPolicyPack": {"name": "p", "version": 1.5}},
     "addPolicyPack.version"),
    ("PATCH", "policygroups/g", {"addPolicyPack": {"name": "p", "version": 1,
                                                   "config": ["all"]}},
     "addPolicyPack.config"),
    ("PATCH", "policygroups/g", {"addPolicyPack": {"name": "p", "version": 1,
                                                   "config": {"all": "x\u0000"}}},
     "addPolicyPack.config.all"),
    ("PATCH", "policygroups/g", {"addPolicyPack": {"name": "p", "version": 1,
                                                   "environments": "prod"}},
     "addPolicyPack.environments"),
    ("PATCH", "policygroups/g", {"addInsightsAccount": {"name": "a",
                                                        "scheduledScanEnabled": "yes"}},
     "addInsightsAccount.scheduledScanEnabled"),
    ("PATCH", "policygroups/g", {"addInsightsAccount": {"id": "1"}},
     "addInsightsAccount.name"),
    ("PATCH", "policygroups/g", {"agentPoolId": 7}, "agentPoolId"),
    ("PATCH", "policygroups/g", {"newname": "x"}, "newname: unknown field"),
    ("PATCH", "policygroups/g", None, "body"),
    ("PATCH", "policygroups/g/batch", [{"newName": "x"}, {"addStack": 1}], "1.addStack"),
    ("PATCH", "policygroups/g/batch", [{"newName": "x"}] * 1001, "1000"),
    ("POST", "accounts", {"name": "a", "provider": "aws", "ownedBy": "me"}, "ownedBy"),
    ("POST", "accounts", {"name": "a", "provider": "aws", "ownedBy": {"login": "x"}},
     "ownedBy.login: unknown field"),
    ("POST", "accounts", {"name": "a b", "provider": "aws"}, "name"),
    ("POST", "accounts", {"name": "a", "provider": ""}, "provider"),
    ("POST", "accounts", {"name": "a", "provider": "aws", "providerConfig": "x"},
     "providerConfig"),
    ("POST", "accounts", {"name": "a", "provider": "aws",
                          "providerConfig": {"k": "\u0000"}}, "providerConfig.k"),
]


async def _api(client: TestClient, new_org) -> GroupApi:  # type: ignore[no-untyped-def]
    org, token = await new_org()
    api = GroupApi(client, org, token)
    assert (await api.create(name="g")).status == 204
    return api


@pytest.mark.parametrize(("method", "path", "body", "field"), BAD_BODIES)
async def test_bad_bodies_are_400_naming_the_field(client: TestClient, new_org, method: str,
                                                   path: str, body: Any,
                                                   field: str) -> None:
    api = await _api(client, new_org)
    resp = await client.request(method, f"/api/orgs/{api.org}/{path}", json=body,
                                headers=api.headers)
    message = await error_of(resp, 400)
    assert field in message, message


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/orgs/{org}/policygroups"),
    ("PATCH", "/api/orgs/{org}/policygroups/g"),
    ("PATCH", "/api/orgs/{org}/policygroups/g/batch"),
    ("POST", "/api/orgs/{org}/accounts"),
    ("PUT", "/api/stacks/{org}/web/prod"),
])
async def test_malformed_and_oversize_bodies(client: TestClient, new_org, method: str,
                                             path: str) -> None:
    api = await _api(client, new_org)
    url = path.format(org=api.org)
    message = await error_of(await client.request(method, url, data=b'{"name": ',
                                                  headers=api.headers), 400)
    assert "not valid JSON" in message
    if method != "PUT":
        message = await error_of(await client.request(method, url, headers=api.headers), 400)
        assert "body is required" in message
    big = b'{"name": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    message = await error_of(await client.request(method, url, data=io.BytesIO(big),
                                                  headers=api.headers), 400)
    assert "exceeds the limit" in message


async def test_stack_resources_are_checked(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    cases = [({"resources": "all"}, "resources"),
             ({"resources": [{"urn": "u", "type": 1}]}, "resources.0.type"),
             ({"resources": [{"urn": "u", "type": "t", "properties": {"a": "\u0000"}}]},
              "resources.0.properties.a")]
    for body, field in cases:
        resp = await client.put(f"/api/stacks/{api.org}/web/prod", json=body,
                                headers=api.headers)
        assert field in await error_of(resp, 400)


async def test_impossible_names_in_paths_are_not_found(client: TestClient, new_org) -> None:
    api = await _api(client, new_org)
    for path in (f"{api.base}/a%00b", f"{api.base}/a%00b/batch",
                 f"/api/orgs/{api.org}/accounts/a%00b"):
        for method in ("GET", "PATCH", "DELETE"):
            if path.endswith("batch") and method != "PATCH":
                continue
            if "accounts" in path and method == "PATCH":
                continue
            body = [{"agentPoolId": "x"}] if path.endswith("batch") else {"agentPoolId": "x"}
            resp = await client.request(method, path, json=body, headers=api.headers)
            assert resp.status == 404, (method, path, await resp.text())
    resp = await client.get(f"/api/stacks/{api.org}/web/a%00b", headers=api.headers)
    assert (await error_of(resp, 400)).startswith("stack:")
    resp = await client.get(f"/api/orgs/{api.org}/stacks", params={"page[number]": "-1"},
                            headers=api.headers)
    assert "page[number]" in await error_of(resp, 400)
