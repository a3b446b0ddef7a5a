"""Pack versions in OPA: loaded on first use under private namespaces, queried per event.

Each policy module is placed at ``data.gavel.pv<id>.p<i>``, with the rule
``gavel.rego.LOADED_MARKER`` appended; a generated runner module at
``data.gavel.run.pv<id>.results`` evaluates all enabled policies of the version in
one query, each with its own ``input.config``, and ``...batch`` does the same for
each input of ``input.batch`` (several events, one HTTP round trip). A policy whose
config (``input.configs[slug]``) is the input's own ``config`` runs as it is: running
each policy ``with`` a config took a fifth to a quarter of OPA's CPU per event, at 10
resources and at 100. The runner is
PUT after the policies and answers for a policy only while that module's marker is
defined, so an answer that is undefined or lacks a requested policy means OPA lacks
modules of the version (OPA restarted, or another worker sharing this OPA is
removing the version): the version is loaded again and the query repeated.

OPA parses and compiles every module it holds on each ``PUT`` or ``DELETE`` of a
policy, and holds all queries while it installs the result, so loading a version
costs time in proportion to everything loaded. A worker therefore keeps at most
``max_pack_versions`` loaded (``worker.loaded_versions``) and removes the least
recently used, runner first, so that no runner outlives its policies.
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

from gavel.metrics import record_pack_load, record_pack_unload
from gavel.rego import (
    LOADED_MARKER,
    loadable_module,
    policy_id,
    policy_package,
    policy_slug,
    runner_id,
)
from worker.loaded_versions import LoadedVersions

log = logging.getLogger(__name__)


class OpaUnavailable(RuntimeError):
    """OPA could not be reached; the caller retries, nothing is skipped."""


class PackFailed(RuntimeError):
    """The pack could not be evaluated (compile or evaluation error in OPA)."""


class OpaRefused(PackFailed):
    """OPA answered a request with an error (4xx, 500): its message and ``errors``."""

    def __init__(self, status: int, message: str, errors: list[Any]) -> None:
        super().__init__(f"OPA {status}: {message}")
        self.errors = errors

    def naming(self, policies: dict[str, str]) -> PackFailed:
        """The failure told with OPA's errors, each at the line of the policy (by OPA
        policy id -> name) whose module it came from: what the pack's author needs."""
        told = []
        for error in self.errors[:MAX_ERRORS_TOLD]:
            if not isinstance(error, dict):
                continue
            location = error.get("location") or {}
            where = policies.get(str(location.get("file")), location.get("file"))
            at = f"policy '{where}' line {location.get('row')}: " if where else ""
            told.append(f"{at}{error.get('code', 'error')}: "
                        f"{_in_authors_terms(str(error.get('message', '')), policies)}")
        more = len(self.errors) - MAX_ERRORS_TOLD
        if more > 0:
            told.append(f"and {more} more")
        return PackFailed("; ".join([str(self), *told]))


# errors of one OPA answer told in a pack's error
MAX_ERRORS_TOLD = 5


def _in_authors_terms(message: str, policies: dict[str, str]) -> str:
    """OPA's message without the places Gavel gives modules: a rule by its own name,
    a module by its policy's."""
    for module_id, name in policies.items():
        message = message.replace("data." + module_id.replace("/", ".") + ".", "")
        message = message.replace(module_id + ":", f"policy '{name}' line ")
    return message


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

    @classmethod
    def of(cls, version_id: int, policies: list[dict[str, Any]]) -> PackVersion:
        """The version of id ``version_id`` whose policies are ``policies`` (as published:
        name, enforcementLevel, rego), each module placed as the worker loads it."""
        return cls(
            id=version_id,
            policies=tuple(Policy(policy_slug(i), p["name"],
                                  p.get("enforcementLevel") or "advisory")
                           for i, p in enumerate(policies)),
            modules=tuple((policy_id(version_id, i),
                           loadable_module(p["rego"], policy_package(version_id, i)))
                          for i, p in enumerate(policies)))

    @property
    def policy_names(self) -> dict[str, str]:
        """Each policy's name by the OPA policy id of its module."""
        return {module_id: policy.name
                for (module_id, _), policy in zip(self.modules, self.policies, strict=True)}

    @property
    def module_ids(self) -> tuple[str, ...]:
        """Every OPA policy id of the version, runner first (the order of removal)."""
        return (runner_id(self.id), *(module_id for module_id, _ in self.modules))


def runner_package(version_id: int) -> str:
    return f"gavel.run.pv{version_id}"


def runner_module(version_id: int) -> str:
    policies = f"data.gavel.pv{version_id}[slug]"
    return (f"package {runner_package(version_id)}\n\n"
            "results[slug] := policy_violations(slug) if {\n"
            "    some slug in input.policies\n"
            f"    {policies}.{LOADED_MARKER}\n"
            "}\n\n"
            "policy_violations(slug) := vs if {\n"
            "    input.config == input.configs[slug]\n"
            f"    vs := {policies}.violations\n"
            "} else := vs if {\n"
            f"    vs := {policies}.violations with input.config as input.configs[slug]\n"
            "} else := []\n\n"
            "batch := [r | some item in input.batch; r := results with input as item]\n")


# a version found incomplete is loaded again this many times in one query, enough to
# outlast another worker that is removing it from a shared OPA
LOAD_ATTEMPTS = 3

# OPA gzips an answer over 1 KiB when the client accepts it (aiohttp does by default).
# Compressing a batch's answer (about 25 KB for 32 events) took OPA from 0.86 to 0.94
# ms of CPU per event, and the worker inflated it again, to save bytes on the way to a
# worker that runs beside it.
PLAIN_ANSWERS = {"Accept-Encoding": "identity"}
# seconds OPA has to answer its health check after a query timed out
HEALTH_TIMEOUT = 2.0


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
            found = PackVersion.of(version_id, policies)
            self._versions[version_id] = found
        return found


class OpaRuntime:
    def __init__(self, session: aiohttp.ClientSession, base_url: str,
                 max_pack_versions: int = 0) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._max_pack_versions = max_pack_versions  # 0: no limit
        self._loaded = LoadedVersions()
        self._loading: dict[int, asyncio.Lock] = {}
        self.version = ""

    @property
    def loaded_versions(self) -> list[int]:
        """Ids of the versions in OPA this worker keeps track of, least recently used
        first."""
        return self._loaded.ids()

    async def inherit_loaded(self) -> int:
        """Take over the pack versions OPA already holds (from an earlier worker) as the
        least recently used, so that they count toward the limit; how many."""
        body = await self._call("GET", "/v1/policies", b"")
        return self._loaded.inherit(policy["id"] for policy in body.get("result", []))

    async def fetch_version(self) -> str:
        body = await self._call("POST", "/v1/query",
                                orjson.dumps({"query": "v := opa.runtime().version"}))
        self.version = body["result"][0]["v"]
        return self.version

    async def _call(self, method: str, path: str, data: bytes,
                    content_type: str = "application/json",
                    missing_ok: bool = False) -> dict[str, Any]:
        try:
            async with self._session.request(method, self._base + path, data=data,
                                             headers={"Content-Type": content_type,
                                                      **PLAIN_ANSWERS}) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise OpaUnavailable(f"OPA unreachable: {exc!r}") from exc
        if status in (502, 503, 504):
            raise OpaUnavailable(f"OPA answered {status}")
        parsed = orjson.loads(body) if body else {}
        if status == 404 and missing_ok:
            return {}
        if status >= 400:
            raise OpaRefused(status, str(parsed.get("message", body[:300])),
                             parsed.get("errors") or [])
        return parsed

    async def healthy(self) -> bool:
        """Whether OPA answers its health check within ``HEALTH_TIMEOUT`` seconds."""
        try:
            async with self._session.get(self._base + "/health",
                                         timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT),
                                         headers=PLAIN_ANSWERS) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def ensure_loaded(self, pack: PackVersion) -> None:
        if pack.id in self._loaded:
            self._loaded.touch(pack.id)
            return
        lock = self._loading.setdefault(pack.id, asyncio.Lock())
        async with lock:
            if pack.id in self._loaded:
                return
            before = self._loaded.discard(pack.id)  # inherited, or found incomplete
            await self._make_room()
            for module_id, text in pack.modules:
                await self._call("PUT", f"/v1/policies/{module_id}", text.encode(), "text/plain")
            await self._call("PUT", f"/v1/policies/{runner_id(pack.id)}",
                             runner_module(pack.id).encode(), "text/plain")
            self._loaded.add(pack.id, pack.module_ids)
            record_pack_load()
            await self._delete([m for m in before if m not in pack.module_ids])

    async def _make_room(self) -> None:
        while self._max_pack_versions and len(self._loaded) >= self._max_pack_versions:
            victim, module_ids = self._loaded.pop_oldest()
            # a query needing the victim meanwhile loads it again only after its removal
            async with self._loading.setdefault(victim, asyncio.Lock()):
                try:
                    await self._delete(module_ids)
                except BaseException:
                    # still (partly) in OPA: removed again on the next load
                    self._loaded.put_back_oldest(victim, module_ids)
                    raise
            record_pack_unload()

    async def _delete(self, module_ids: list[str] | tuple[str, ...]) -> None:
        for module_id in module_ids:
            await self._call("DELETE", f"/v1/policies/{module_id}", b"", missing_ok=True)

    async def evaluate(self, pack: PackVersion, input_doc: dict[str, Any]
                       ) -> tuple[dict[str, list[dict[str, Any]]], str | None, float]:
        """Run the pack's enabled policies; returns (slug -> violations, decision id, ms)."""
        return await self._query(pack, "results", {"input": input_doc}, [input_doc])

    async def evaluate_batch(self, pack: PackVersion, input_docs: list[dict[str, Any]]
                             ) -> tuple[list[dict[str, list[dict[str, Any]]]], str | None, float]:
        """``evaluate`` for several inputs in one query; results in the same order."""
        return await self._query(pack, "batch", {"input": {"batch": input_docs}}, input_docs)

    async def _query(self, pack: PackVersion, rule: str, document: dict[str, Any],
                     input_docs: list[dict[str, Any]]) -> tuple[Any, str | None, float]:
        payload = orjson.dumps(document)
        for _ in range(LOAD_ATTEMPTS):
            await self.ensure_loaded(pack)
            began = time.perf_counter()
            body = await self._evaluation(pack, f"/v1/data/gavel/run/pv{pack.id}/{rule}",
                                          payload)
            elapsed = (time.perf_counter() - began) * 1000
            result = body.get("result")
            if result is not None and _answers_all(result if rule == "batch" else [result],
                                                   input_docs):
                return result, body.get("decision_id"), elapsed
            # OPA lacks modules of the version: load it again (what is there is kept)
            self._loaded.discard(pack.id)
        raise PackFailed(f"pack version {pack.id} is not complete in OPA after "
                         f"{LOAD_ATTEMPTS} loads")

    async def _evaluation(self, pack: PackVersion, path: str, payload: bytes) -> dict[str, Any]:
        """OPA's answer to one query of the pack. A query OPA does not answer in time
        while it answers its health check fails the pack (its policies take too long on
        this input; sent again, it would take as long, and OPA's time with it) rather
        than waiting for OPA."""
        try:
            return await self._call("POST", path, payload)
        except OpaRefused as exc:
            raise exc.naming(pack.policy_names) from exc
        except OpaUnavailable as exc:
            if isinstance(exc.__cause__, TimeoutError) and await self.healthy():
                limit = self._session.timeout.total or 0
                raise PackFailed(f"OPA did not answer within {limit:g}s (GAVEL_OPA_TIMEOUT): "
                                 "the pack's policies take too long on this input") from exc
            raise


def _answers_all(answers: list[Any], input_docs: list[dict[str, Any]]) -> bool:
    """Whether the runner answered every requested policy of every input."""
    return len(answers) == len(input_docs) and all(
        isinstance(found, dict) and all(slug in found for slug in doc["policies"])
        for found, doc in zip(answers, input_docs, strict=False))
