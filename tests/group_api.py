"""Small HTTP helpers for the policy group, stack and account tests."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.helpers import auth


class GroupApi:
    """One org's policy group, stack and account endpoints, with its admin token."""

    def __init__(self, client: TestClient, org: str, token: str) -> None:
        self.client, self.org, self.headers = client, org, auth(token)
        self.base = f"/api/orgs/{org}/policygroups"

    async def create(self, **body: Any) -> ClientResponse:
        return await self.client.post(self.base, json=body, headers=self.headers)

    async def get(self, group: str) -> dict[str, Any]:
        resp = await self.client.get(f"{self.base}/{group}", headers=self.headers)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def summaries(self) -> dict[str, dict[str, Any]]:
        resp = await self.client.get(self.base, headers=self.headers)
        assert resp.status == 200, await resp.text()
        return {g["name"]: g for g in (await resp.json())["policyGroups"]}

    async def patch(self, group: str, body: Any) -> ClientResponse:
        return await self.client.patch(f"{self.base}/{group}", json=body, headers=self.headers)

    async def batch(self, group: str, body: Any) -> ClientResponse:
        return await self.client.patch(f"{self.base}/{group}/batch", json=body,
                                       headers=self.headers)

    async def delete(self, group: str) -> ClientResponse:
        return await self.client.delete(f"{self.base}/{group}", headers=self.headers)

    async def metadata(self) -> dict[str, int]:
        resp = await self.client.get(f"{self.base}/metadata", headers=self.headers)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def put_stack(self, project: str, stack: str,
                        resources: list[dict[str, Any]] | None = None) -> ClientResponse:
        body = None if resources is None else {"resources": resources}
        return await self.client.put(f"/api/stacks/{self.org}/{project}/{stack}", json=body,
                                     headers=self.headers)

    async def add_account(self, name: str, **fields: Any) -> ClientResponse:
        return await self.client.post(f"/api/orgs/{self.org}/accounts",
                                      json={"name": name, "provider": "aws", **fields},
                                      headers=self.headers)


async def error_of(resp: ClientResponse, status: int) -> str:
    """Assert the status and the error shape; return the message."""
    body = await resp.json()
    assert resp.status == status, body
    assert body["code"] == status and isinstance(body["message"], str), body
    return body["message"]


def stack_ref(project: str, name: str) -> dict[str, str]:
    return {"name": name, "routingProject": project}


def resources(count: int) -> list[dict[str, Any]]:
    return [{"urn": f"urn:pulumi:s::p::aws:s3/bucket:Bucket::b{i}",
             "type": "aws:s3/bucket:Bucket", "name": f"b{i}"} for i in range(count)]
