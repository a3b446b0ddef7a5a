"""The calls of Gavel's HTTP API the benchmarks make, as an org admin."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import orjson

LONG_POLL_SECONDS = 30


class UnexpectedAnswer(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {path} answered {status}: {body[:300]!r}")
        self.status = status


class NotFinished(RuntimeError):
    """The evaluation was still pending when the caller's deadline passed."""


class GavelClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, org: str,
                 token: str) -> None:
        self.session = session
        self.base_url = base_url
        self.org = org
        self.headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}

    async def call(self, method: str, path: str, body: Any = None,
                   expect: tuple[int, ...] = (200,)) -> Any:
        """The answer's JSON (None when empty); UnexpectedAnswer for any other status."""
        data = None if body is None else orjson.dumps(body)
        async with self.session.request(method, self.base_url + path, data=data,
                                        headers=self.headers) as resp:
            raw = await resp.read()
            if resp.status not in expect:
                raise UnexpectedAnswer(method, path, resp.status, raw)
            return orjson.loads(raw) if raw else None

    async def publish_pack(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", f"/api/orgs/{self.org}/policypacks", body, (201,))

    async def create_group(self, name: str, mode: str, entity_type: str = "stacks") -> None:
        await self.call("POST", f"/api/orgs/{self.org}/policygroups",
                        {"name": name, "entityType": entity_type, "mode": mode}, (204,))

    async def update_group(self, name: str, update: dict[str, Any]) -> None:
        await self.call("PATCH", f"/api/orgs/{self.org}/policygroups/{name}", update, (204,))

    async def batch_update_group(self, name: str, updates: list[dict[str, Any]]) -> None:
        await self.call("PATCH", f"/api/orgs/{self.org}/policygroups/{name}/batch", updates,
                        (204,))

    async def register_stack(self, project: str, stack: str) -> None:
        await self.call("PUT", f"/api/stacks/{self.org}/{project}/{stack}", None, (200, 201))

    async def post_event(self, project: str, stack: str, kind: str,
                         resources: list[dict[str, Any]]) -> str:
        answer = await self.call("POST", f"/api/stacks/{self.org}/{project}/{stack}/events",
                                 {"kind": kind, "resources": resources}, (202,))
        return str(answer["id"])

    async def finished_evaluation(self, evaluation_id: str, timeout: float
                                  ) -> dict[str, Any]:
        """Long-poll until the evaluation is finished; NotFinished after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            wait = max(0, min(LONG_POLL_SECONDS, round(deadline - time.monotonic())))
            document = await self.call(
                "GET", f"/api/orgs/{self.org}/evaluations/{evaluation_id}?wait={wait}")
            if document["status"] == "finished":
                return document
            if time.monotonic() >= deadline:
                raise NotFinished(f"evaluation {evaluation_id} not finished "
                                   f"after {timeout:.0f}s")
