"""Pack versions in OPA: loaded once under private namespaces, queried per event.

Each policy module is placed at ``data.gavel.pv<id>.p<i>``; a generated runner module
at ``data.gavel.run.pv<id>.results`` evaluates all enabled policies of the version
in one query, each with its own ``input.config``, and ``...batch`` does the same for
each input of ``input.batch`` (several events, one HTTP round trip). If a query finds
the runner missing (OPA restarted and lost its policies), the version is loaded again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import orjson

from gavel.rego import place_module, policy_id, policy_package, policy_slug

log = logging.getLogger(__name__)


class OpaUnavailable(RuntimeError):
    """OPA could not be reached; the caller retries, nothing is skipped."""


class PackFailed(RuntimeError):
    """The pack could not be evaluated (compile or evaluation error in OPA)."""


@dataclass(frozen=True, slots=True)
class Policy:
    slug: str
    name: str
    default_level: str


@dataclass(frozen=True, slots=True)
class PackVersion:
    id: int
    policies: tuple[Policy, ...]
    modules: tuple[tuple[str, str], ...]  # (OPA policy id, placed module text)


def runner_package(version_id: int) -> str:
    return f"gavel.run.pv{version_id}"


def runner_module(version_id: int) -> str:
    return (f"package {runner_package(version_id)}\n\n"
            "results[slug] := vs if {\n"
            "    some slug in input.policies\n"
            f"    vs := data.gavel.pv{version_id}[slug].violations"
            " with input.config as input.configs[slug]\n"
            "}\n\n"
            "batch := [r | some item in input.batch; r := results with input as item]\n")


class PackCatalog:
    """Immutable pack versions, read from Postgres once each."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._versions: dict[int, PackVersion] = {}

    async def get(self, version_id: int) -> PackVersion:
        found = self._versions.get(version_id)
        if found is None:
            policies = await self._pool.fetchval(
                "SELECT policies FROM policy_pack_versions WHERE id = $1", version_id)
            if policies is None:
                raise PackFailed(f"pack version {version_id} no longer exists")
            found = PackVersion(
                id=version_id,
                policies=tuple(Policy(policy_slug(i), p["name"],
                                      p.get("enforcementLevel") or "advisory")
                               for i, p in enumerate(policies)),
                modules=tuple((policy_id(version_id, i),
                               place_module(p["rego"], policy_package(version_id, i)))
                              for i, p in enumerate(policies)))
            self._versions[version_id] = found
        return found


class OpaRuntime:
    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._loaded: set[int] = set()
        self._loading: dict[int, asyncio.Lock] = {}
        self.version = ""

    async def fetch_version(self) -> str:
        body = await self._call("POST", "/v1/query",
                                orjson.dumps({"query": "v := opa.runtime().version"}))
        self.version = body["result"][0]["v"]
        return self.version

    async def _call(self, method: str, path: str, data: bytes,
                    content_type: str = "application/json") -> dict[str, Any]:
        try:
            async with self._session.request(method, self._base + path, data=data,
                                             headers={"Content-Type": content_type}) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise OpaUnavailable(f"OPA unreachable: {exc!r}") from exc
        if status in (502, 503, 504):
            raise OpaUnavailable(f"OPA answered {status}")
        parsed = orjson.loads(body) if body else {}
        if status >= 400:
            raise PackFailed(f"OPA {status}: {parsed.get('message', body[:300])}")
        return parsed

    async def ensure_loaded(self, pack: PackVersion) -> None:
        if pack.id in self._loaded:
            return
        lock = self._loading.setdefault(pack.id, asyncio.Lock())
        async with lock:
            if pack.id in self._loaded:
                return
            for module_id, text in pack.modules:
                await self._call("PUT", f"/v1/policies/{module_id}", text.encode(), "text/plain")
            await self._call("PUT", f"/v1/policies/gavel/run/pv{pack.id}",
                             runner_module(pack.id).encode(), "text/plain")
            self._loaded.add(pack.id)

    async def evaluate(self, pack: PackVersion, input_doc: dict[str, Any]
                       ) -> tuple[dict[str, list[dict[str, Any]]], str | None, float]:
        """Run the pack's enabled policies; returns (slug -> violations, decision id, ms)."""
        return await self._query(pack, "results", {"input": input_doc})

    async def evaluate_batch(self, pack: PackVersion, input_docs: list[dict[str, Any]]
                             ) -> tuple[list[dict[str, list[dict[str, Any]]]], str | None, float]:
        """``evaluate`` for several inputs in one query; results in the same order."""
        return await self._query(pack, "batch", {"input": {"batch": input_docs}})

    async def _query(self, pack: PackVersion, rule: str,
                     document: dict[str, Any]) -> tuple[Any, str | None, float]:
        payload = orjson.dumps(document)
        for attempt in (1, 2):
            await self.ensure_loaded(pack)
            began = time.perf_counter()
            body = await self._call("POST", f"/v1/data/gavel/run/pv{pack.id}/{rule}", payload)
            elapsed = (time.perf_counter() - began) * 1000
            if "result" in body:
                return body["result"], body.get("decision_id"), elapsed
            # undefined: OPA lost the modules (restart); load again once
            self._loaded.discard(pack.id)
            if attempt == 2:
                raise PackFailed(f"pack version {pack.id} is not defined in OPA after loading")
        raise AssertionError("unreachable")

    def forget_all(self) -> None:
        self._loaded.clear()
