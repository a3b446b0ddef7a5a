"""The worker's pack versions in the real OPA (one of each test's own): loading,
answers, the bound on loaded versions, versions whose modules disappear behind the
worker's back, and versions an earlier worker left in OPA."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from gavel.rego import policy_id, policy_slug
from tests.worker_process import free_port, opa_healthy, opa_process, wait_until
from worker.evaluate import PackPlan
from worker.opa_runtime import OpaRuntime, OpaUnavailable, PackFailed, PackVersion

EXAMPLE_PACK = Path(__file__).resolve().parents[2] / "examples" / "aws-baseline.json"
POLICIES = json.loads(EXAMPLE_PACK.read_text())["policies"]
S3, EBS = "p0", "p1"  # s3-no-public-read, ebs-volumes-encrypted

Held = Callable[[PackVersion], Awaitable[list[str]]]
Runtime = Callable[[int], OpaRuntime]


def input_doc(*resources: dict[str, Any]) -> dict[str, Any]:
    slugs = [policy_slug(i) for i in range(len(POLICIES))]
    return {"entity": {"type": "stack", "org": "acme", "project": "web", "stack": "prod"},
            "event": {"kind": "preview", "id": "e1"}, "resources": list(resources),
            "policies": slugs, "configs": {slug: {} for slug in slugs}}


PUBLIC_BUCKET = {"urn": "urn:bucket", "type": "aws:s3/bucket:Bucket", "name": "site",
                 "properties": {"acl": "public-read", "tags": {"owner": "ops"}}}
PLAIN_VOLUME = {"urn": "urn:volume", "type": "aws:ebs/volume:Volume", "name": "data",
                "properties": {"size": 8, "tags": {"owner": "ops"}}}
BOTH = input_doc(PUBLIC_BUCKET, PLAIN_VOLUME)


def urns(found: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    return {slug: sorted(v["urn"] for v in violations) for slug, violations in found.items()}


EXPECTED = {"p0": ["urn:bucket"], "p1": ["urn:volume"], "p2": [], "p3": []}


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


@pytest_asyncio.fixture
async def opa_url(tmp_path: Path) -> AsyncIterator[str]:
    """An OPA of the test's own, empty at the start."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    opa = opa_process(port, tmp_path / "opa.log")
    opa.start()
    try:
        await wait_until(lambda: opa_healthy(url), "the test's OPA", 30, opa.tail)
        yield url
    finally:
        opa.stop()


def new_version() -> PackVersion:
    """aws-baseline as a pack version of an id of its own."""
    return PackVersion.of(random.randrange(10**12, 10**13), POLICIES)


@pytest.fixture
def runtime(opa_url: str, session: aiohttp.ClientSession) -> Runtime:
    return lambda max_pack_versions: OpaRuntime(session, opa_url, max_pack_versions)


@pytest.fixture
def held(opa_url: str, session: aiohttp.ClientSession
         ) -> Callable[[PackVersion], Awaitable[list[str]]]:
    async def held(version: PackVersion) -> list[str]:
        """Which of the version's modules (runner first) OPA holds."""
        found = []
        for module_id in version.module_ids:
            async with session.get(f"{opa_url}/v1/policies/{module_id}") as resp:
                if resp.status == 200:
                    found.append(module_id)
        return found
    return held


async def test_every_policy_answers_in_one_query_and_in_a_batch(
        runtime: Runtime) -> None:
    opa, version = runtime(0), new_version()
    found, _, _ = await opa.evaluate(version, BOTH)
    assert urns(found) == EXPECTED
    clean = input_doc(dict(PUBLIC_BUCKET, properties={"acl": "private",
                                                      "tags": {"owner": "ops"}}))
    answers, _, _ = await opa.evaluate_batch(version, [BOTH, clean])
    assert [urns(a) for a in answers] == [EXPECTED, {"p0": [], "p1": [], "p2": [], "p3": []}]


# a policy that reports the config it ran under
CONFIG_ECHO = """package echo

violations contains {"message": "config", "details": input.config}
"""


async def test_each_policy_runs_under_its_own_config(runtime: Runtime) -> None:
    """A policy without a config of its own sees the empty one (the input's, run as it
    is), one with a config sees its own; an input whose own config is another, or
    which has none (built before the runner ran policies as they are), changes
    nothing."""
    names = ["plain", "tagged", "sized"]
    version = PackVersion.of(random.randrange(10**12, 10**13),
                             [{"name": name, "rego": CONFIG_ECHO} for name in names])
    config = {"tagged": {"requiredTags": ["team"]}, "sized": {"maxSize": 3}}
    plan = PackPlan.of(version, config)
    expected = {"p0": [{}], "p1": [config["tagged"]], "p2": [config["sized"]]}

    def seen(found: dict[str, list[dict[str, Any]]]) -> dict[str, list[Any]]:
        return {slug: [v["details"] for v in violations] for slug, violations in found.items()}

    doc = plan.input_for(input_doc())
    other = {**doc, "config": config["sized"]}
    without = {k: v for k, v in doc.items() if k != "config"}
    opa = runtime(0)
    for each in (doc, other, without):
        found, _, _ = await opa.evaluate(version, each)
        assert seen(found) == expected
    answers, _, _ = await opa.evaluate_batch(version, [doc, other, without])
    assert [seen(a) for a in answers] == [expected] * 3


async def test_a_batch_answer_comes_back_uncompressed(opa_url: str) -> None:
    """OPA gzips an answer over 1 KiB for a client that accepts it; beside the worker
    that costs CPU at both ends and saves nothing."""
    encodings: list[str | None] = []

    async def on_end(_session: aiohttp.ClientSession, _context: Any,
                     params: aiohttp.TraceRequestEndParams) -> None:
        encodings.append(params.response.headers.get("Content-Encoding"))

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_end)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        answers, _, _ = await OpaRuntime(session, opa_url).evaluate_batch(
            new_version(), [BOTH] * 40)
    assert [urns(a) for a in answers] == [EXPECTED] * 40
    assert encodings[-1] is None


async def test_least_recently_used_version_is_removed_and_loaded_again_when_needed(
        runtime: Runtime, held: Held) -> None:
    opa = runtime(2)
    first, second, third = new_version(), new_version(), new_version()
    await opa.evaluate(first, BOTH)
    await opa.evaluate(second, BOTH)
    await opa.evaluate(first, BOTH)  # second is now the least recently used
    found, _, _ = await opa.evaluate(third, BOTH)
    assert urns(found) == EXPECTED
    assert opa.loaded_versions == [first.id, third.id]
    assert await held(second) == []
    assert len(await held(first)) == len(await held(third)) == 1 + len(POLICIES)

    found, _, _ = await opa.evaluate(second, BOTH)
    assert urns(found) == EXPECTED
    assert opa.loaded_versions == [third.id, second.id]
    assert await held(first) == []


async def test_no_limit_keeps_every_version(runtime: Runtime, held: Held) -> None:
    opa = runtime(0)
    versions = [new_version() for _ in range(3)]
    for version in versions:
        await opa.evaluate(version, BOTH)
    assert opa.loaded_versions == [v.id for v in versions]
    for version in versions:
        assert len(await held(version)) == 1 + len(POLICIES)


async def test_a_policy_module_removed_behind_the_worker_is_loaded_again(
        runtime: Runtime, held: Held, opa_url: str, session: aiohttp.ClientSession) -> None:
    # what OPA holds while another worker sharing it removes the version: the runner
    # still there, a policy module gone; its violations must not silently go missing
    opa, version = runtime(0), new_version()
    await opa.evaluate(version, BOTH)
    async with session.delete(f"{opa_url}/v1/policies/{policy_id(version.id, 0)}") as resp:
        assert resp.status == 200
    found, _, _ = await opa.evaluate(version, BOTH)
    assert urns(found) == EXPECTED
    assert len(await held(version)) == 1 + len(POLICIES)


async def test_two_workers_sharing_one_opa_each_within_its_bound(
        runtime: Runtime) -> None:
    one, other = runtime(1), runtime(1)
    shared, own = new_version(), new_version()
    await one.evaluate(shared, BOTH)
    await other.evaluate(shared, BOTH)
    await one.evaluate(own, BOTH)  # removes shared from OPA, which other still uses
    for _ in range(2):
        found, _, _ = await other.evaluate(shared, BOTH)
        assert urns(found) == EXPECTED
        found, _, _ = await one.evaluate(own, BOTH)
        assert urns(found) == EXPECTED


async def test_versions_an_earlier_worker_left_in_opa_are_removed_first(
        runtime: Runtime, held: Held) -> None:
    earlier = runtime(0)
    left = [new_version() for _ in range(3)]
    for version in left:
        await earlier.evaluate(version, BOTH)

    opa = runtime(2)
    assert await opa.inherit_loaded() == 3
    assert sorted(opa.loaded_versions) == sorted(v.id for v in left)
    again, new = left[1], new_version()
    found, _, _ = await opa.evaluate(again, BOTH)  # loaded again, then within the limit
    assert urns(found) == EXPECTED
    found, _, _ = await opa.evaluate(new, BOTH)
    assert urns(found) == EXPECTED
    assert opa.loaded_versions == [again.id, new.id]
    assert [await held(v) for v in (left[0], left[2])] == [[], []]
    assert len(await held(again)) == len(await held(new)) == 1 + len(POLICIES)


# evaluates to two values for one input: OPA answers 500 with eval_conflict_error
CONFLICTING = """package conflicting

kind = "one" if input.resources
kind = "two" if input.resources

violations contains {"message": kind}
"""
# counts to ten million for every input, far longer than the test's timeout
SLOW = """package slow

violations contains {"message": "slow"} if count([x | some x in numbers.range(1, 10000000)]) < 0
"""


def pack_of(*policies: tuple[str, str]) -> PackVersion:
    return PackVersion.of(random.randrange(10**12, 10**13), [
        {"name": name, "enforcementLevel": "mandatory", "rego": rego} for name, rego in policies])


def plain_input(version: PackVersion) -> dict[str, Any]:
    slugs = [p.slug for p in version.policies]
    return {**input_doc(PUBLIC_BUCKET), "policies": slugs, "configs": {s: {} for s in slugs}}


async def test_an_evaluation_error_names_the_policy_and_line(runtime: Runtime) -> None:
    version = pack_of(("fine", CONFIG_ECHO), ("conflicting", CONFLICTING))
    with pytest.raises(PackFailed) as failed:
        await runtime(0).evaluate(version, plain_input(version))
    message = str(failed.value)
    assert message.startswith("OPA 500: ")
    assert message == (
        "OPA 500: error(s) occurred while evaluating query; policy 'conflicting' line 4: "
        "eval_conflict_error: rule kind produced conflicting values:\n"
        "  \"one\" at policy 'conflicting' line 3\n  \"two\" at policy 'conflicting' line 4")


async def test_a_query_slower_than_the_timeout_fails_the_pack_while_opa_is_healthy(
        opa_url: str) -> None:
    version = pack_of(("slow", SLOW))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        opa = OpaRuntime(session, opa_url)
        await opa.ensure_loaded(version)
        with pytest.raises(PackFailed) as failed:
            await opa.evaluate(version, plain_input(version))
    assert str(failed.value) == ("OPA did not answer within 1s (GAVEL_OPA_TIMEOUT): the "
                                 "pack's policies take too long on this input")


async def test_a_query_opa_does_not_answer_while_it_is_down_waits_for_opa(
        session: aiohttp.ClientSession) -> None:
    opa = OpaRuntime(session, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(OpaUnavailable):
        await opa.evaluate(new_version(), BOTH)
