"""Current violations over HTTP: paging, every filter and sort, Pulumi's shape, bad
parameters and other orgs. 5,000 current violations (and their history) are
written straight to Postgres, as the worker would have stored them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from api.page_tokens import AFTER, ListIdentity, encode
from gavel import compliance, compliance_summary, result_pages, result_queries
from gavel.orgs import create_org
from tests.helpers import auth
from tests.policy_setup import org_id as org_id_of
from tests.result_client import (
    fetch_all,
    fetch_backwards,
    fetch_by_number,
    get,
    link_query,
)
from tests.result_seed import BASE_TIME, Current, Evaluation, Violation, seed

PACKS = ["baseline", "network", "tagging"]
STACKS, ACCOUNTS, PER_ENTITY = 40, 10, 100


def _entities() -> list[tuple[str, str]]:
    return ([("stack", f"proj-{i % 4}/stack-{i:02d}") for i in range(STACKS)]
            + [("account", f"acct-{i:02d}") for i in range(ACCOUNTS)])


def _violation(i: int, v: int, key: str) -> Violation:
    groups = ["default-policy-group"] if i % 3 else ["prod", "shared"]
    return Violation(pack=PACKS[v % 3], policy=f"rule-{v % 7}",
                     level="mandatory" if (i + v) % 4 == 0 else "advisory",
                     groups=groups, urn=f"urn:{key}:r{v}", message=f"{key} broke {v}",
                     details={"v": v} if v % 10 == 0 else None)


def dataset() -> list[Evaluation]:
    evaluations = []
    for i, (entity_type, key) in enumerate(_entities()):
        # an older evaluation, no longer current, with violations of its own
        evaluations.append(Evaluation(entity_type, key, BASE_TIME + timedelta(minutes=i),
                                      [_violation(i, v, key) for v in range(3)]))
        at = BASE_TIME + timedelta(hours=1, minutes=(i * 7) % 50)
        evaluations.append(Evaluation(entity_type, key, at,
                                      [_violation(i, v, key) for v in range(PER_ENTITY)],
                                      kind="scan" if entity_type == "account" else "update"))
    return evaluations


@pytest_asyncio.fixture(scope="module")
async def seeded(pool: asyncpg.Pool) -> AsyncIterator[tuple[str, str, list[Current]]]:
    name = f"org-{uuid.uuid4().hex[:8]}"
    org_id, token = await create_org(pool, name)
    # blocks of seven entities: a page by number sorted by entity starts at one
    current = await seed(pool, org_id, dataset(), block_rows=700)
    yield name, token, current
    await pool.execute("DELETE FROM orgs WHERE id = $1", org_id)


async def test_every_page_returns_each_violation_once(client: TestClient, seeded) -> None:
    org, token, current = seeded
    assert len(current) == 5000
    for size, sort in ((1000, ""), (333, "?sort=level"), (700, "?sort=-pack,observedAt")):
        items = await fetch_by_number(client, token, f"/api/orgs/{org}/violations{sort}",
                                      size=size)
        ids = [item["id"] for item in items]
        assert len(ids) == len(set(ids)) == 5000
        assert set(ids) == {c.id for c in current}


async def test_links_and_meta(client: TestClient, seeded) -> None:
    org, token, _ = seeded
    body = await get(client, token, f"/api/orgs/{org}/violations?page[number]=2&page[size]=1000")
    assert body["meta"]["page"] == {
        "type": "number_size", "number": 2, "size": 1000, "total": 5000, "first_number": 0,
        "last_number": 4, "next_number": 3, "prev_number": 1, "total_estimated": False}
    assert "page%5Bnumber%5D=3" in body["links"]["next"]
    beyond = await get(client, token, f"/api/orgs/{org}/violations?page[number]=50")
    assert beyond["violations"] == [] and beyond["meta"]["page"]["total"] == 5000


def _ordered(items: list[dict[str, Any]], sort: str) -> list[int]:
    """The ids in the order ``sort`` asks for: stable sorts applied from the last key to
    the first, after the id tiebreak (in the last key's direction)."""
    keys = sort.split(",") if sort else []
    expected = sorted(items, key=lambda i: i["id"], reverse=bool(keys) and keys[-1][0] == "-")
    for key in reversed(keys):
        name = key.lstrip("-")
        expected.sort(key=lambda i, name=name: _sort_value(i, name), reverse=key[0] == "-")
    return [i["id"] for i in expected]


KEYSET_SORTS = [("", 700), ("-observedAt", 333), ("-level,observedAt", 450),
                ("level,-entity", 600), ("entity,-observedAt", 800), ("-pack,observedAt", 900),
                ("policy,-level", 1000), ("pack,policy", 650), ("pack,-observedAt", 400),
                ("-pack,-policy", 1000)]


@pytest.mark.parametrize(("sort", "size"), KEYSET_SORTS)
async def test_following_next_links_returns_each_violation_once_in_order(
        client: TestClient, seeded, sort: str, size: int) -> None:
    org, token, current = seeded
    url = f"/api/orgs/{org}/violations" + (f"?sort={sort}" if sort else "")
    first = await get(client, token, f"{url}{'&' if sort else '?'}page[size]={size}")
    assert link_query(first["links"]["next"])["page[number]"] == ["1"]
    assert "page[after]" in link_query(first["links"]["next"])
    assert "page[after]" not in link_query(first["links"]["last"])
    items = await fetch_all(client, token, url, size=size)
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) == 5000 and set(ids) == {c.id for c in current}
    assert ids == _ordered(items, sort)
    by_number = await fetch_by_number(client, token, url, size=size)
    assert [item["id"] for item in by_number] == ids


async def test_a_pack_led_sort_over_more_packs_than_branches_sorts_them(
        client: TestClient, seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(result_queries, "MAX_LISTED_BRANCHES", 2)  # the org has 3
    org, token, current = seeded
    items = await fetch_all(client, token, f"/api/orgs/{org}/violations?sort=-pack,policy",
                            size=700)
    assert [i["id"] for i in items] == _ordered(items, "-pack,policy")
    assert len(items) == len(current)


@pytest.mark.parametrize(("sort", "size"), [("", 700), ("-level,observedAt", 450),
                                            ("entity,-observedAt", 800),
                                            ("-pack,observedAt", 600), ("pack,policy", 900)])
async def test_following_prev_links_from_the_last_page(client: TestClient, seeded, sort: str,
                                                       size: int) -> None:
    org, token, _ = seeded
    url = f"/api/orgs/{org}/violations" + (f"?sort={sort}&" if sort else "?")
    last = (await get(client, token, f"{url}page[size]={size}"))["links"]["last"]
    backwards = await fetch_backwards(client, token, last)
    forwards = await fetch_by_number(client, token, url.rstrip("?&"), size=size)
    assert [i["id"] for i in backwards] == [i["id"] for i in forwards]


@pytest.mark.parametrize(("sort", "size"), [("", 700), ("-level,observedAt", 450),
                                            ("pack,policy", 600), ("-observedAt", 1000)])
async def test_the_last_link_reads_the_end_and_is_the_last_page(
        client: TestClient, seeded, sort: str, size: int) -> None:
    org, token, _ = seeded
    url = f"/api/orgs/{org}/violations" + (f"?sort={sort}&" if sort else "?")
    first = await get(client, token, f"{url}page[size]={size}")
    last_number = first["meta"]["page"]["last_number"]
    query = link_query(first["links"]["last"])
    assert query["page[number]"] == [str(last_number)] and "page[before]" in query
    last = await get(client, token, first["links"]["last"])
    by_number = await get(client, token, f"{url}page[size]={size}&page[number]={last_number}")
    assert last["violations"] == by_number["violations"]
    assert last["meta"] == by_number["meta"]
    assert last["links"]["next"] is None and last["links"]["self"] == first["links"]["last"]
    assert last["links"]["last"] == first["links"]["last"]


def _counting_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Totals past 1,000 matches are the planner's estimate, as for lists without a kept
    total (the evaluations, violations by entity or urn): the violations list is one
    with thousands of rows for any sort."""
    monkeypatch.setattr(result_pages, "EXACT_COUNT_LIMIT", 1000)
    monkeypatch.setattr(compliance.KeptCounts, "of", classmethod(lambda *_: None))


def _estimating(monkeypatch: pytest.MonkeyPatch, estimate: int) -> None:
    """Totals past 1,000 matches are estimated, and the planner estimates ``estimate``."""
    _counting_only(monkeypatch)
    count = result_pages._count

    async def estimated(pool: asyncpg.Pool,
                        query: result_queries.PagedQuery) -> tuple[int, int | None]:
        counted, planned = await count(pool, query)
        return counted, None if planned is None else estimate

    monkeypatch.setattr(result_pages, "_count", estimated)


@pytest.mark.parametrize(("estimate", "sort", "size"), [
    (5000, "-level,observedAt", 900), (3100, "", 700), (3100, "pack,policy", 900),
    (9000, "entity,-observedAt", 800), (9000, "", 450)])
async def test_with_an_estimated_total_last_then_prev_leads_back_through_every_row_once(
        client: TestClient, seeded, monkeypatch: pytest.MonkeyPatch, estimate: int,
        sort: str, size: int) -> None:
    # too low an estimate numbers the pages read from the end down to 0 before the start
    # of the list; too high a one reaches the start above 0
    _estimating(monkeypatch, estimate)
    org, token, current = seeded
    url = f"/api/orgs/{org}/violations" + (f"?sort={sort}&" if sort else "?")
    first = await get(client, token, f"{url}page[size]={size}")
    assert first["meta"]["page"]["total"] == estimate
    last_number = (estimate - 1) // size
    last = await get(client, token, first["links"]["last"])
    assert last["meta"]["page"] == {
        "type": "number_size", "number": last_number, "size": size, "total": estimate,
        "first_number": 0, "last_number": last_number, "next_number": None,
        "prev_number": last_number - 1, "total_estimated": True}
    assert last["links"]["next"] is None and len(last["violations"]) == size
    backwards = await fetch_backwards(client, token, first["links"]["last"],
                                      first_number=0 if estimate <= 5000 else None)
    forwards = await fetch_all(client, token, url.rstrip("?&"), size=1000)
    assert last["violations"] == forwards[-size:]
    assert [i["id"] for i in backwards] == [i["id"] for i in forwards]
    assert len(forwards) == len(current)


async def test_the_last_link_after_the_list_changed_is_its_page_by_number(
        client: TestClient, pool: asyncpg.Pool, new_org) -> None:
    name, token = await new_org()
    org_id = await org_id_of(pool, name)

    async def evaluate(first: int, count: int) -> None:
        await seed(pool, org_id, [
            Evaluation("stack", f"web/s{i}", BASE_TIME + timedelta(minutes=i),
                       [_violation(i, v, f"web/s{i}") for v in range(5)])
            for i in range(first, first + count)])

    async def forget(count: int) -> None:
        # rows gone from the current state, its counts rebuilt as after any repair
        async with pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM current_violations WHERE violation_id IN (SELECT violation_id "
                "FROM current_violations WHERE org_id = $1 LIMIT $2)", org_id, count)
            await compliance_summary.rebuild(conn, org_id)

    await evaluate(0, 6)
    url = f"/api/orgs/{name}/violations?sort=-observedAt&page[size]=10"
    last_link = (await get(client, token, url))["links"]["last"]
    assert link_query(last_link)["page[number]"] == ["2"]
    # 40 rows (page 2 is no longer the last), 25 (the last again), 10 (past the end)
    for change, left in ((lambda: evaluate(6, 2), 10), (lambda: forget(15), 5),
                         (lambda: forget(15), 0)):
        await change()
        last = await get(client, token, last_link)
        by_number = await get(client, token, f"{url}&page[number]=2")
        assert last["violations"] == by_number["violations"]
        assert len(last["violations"]) == left
        assert last["meta"] == by_number["meta"]


async def test_a_continued_page_keeps_the_meta_of_its_number(client: TestClient, seeded) -> None:
    org, token, _ = seeded
    first = await get(client, token, f"/api/orgs/{org}/violations?sort=-level,observedAt"
                                      "&page[size]=1000&page[number]=1")
    body = await get(client, token, first["links"]["next"])
    assert body["meta"]["page"] == {
        "type": "number_size", "number": 2, "size": 1000, "total": 5000, "first_number": 0,
        "last_number": 4, "next_number": 3, "prev_number": 1, "total_estimated": False}
    assert body["links"]["self"] == first["links"]["next"]
    assert "page[after]" not in link_query(body["links"]["first"])
    prev = await get(client, token, body["links"]["prev"])
    assert prev["violations"] == first["violations"]


async def test_continuing_after_rows_changed_skips_and_repeats_nothing(
        client: TestClient, pool: asyncpg.Pool, new_org) -> None:
    # the worker replaces an entity's violations at any time: a page number would shift,
    # a continuation by sort key does not
    name, token = await new_org()
    current = await seed(pool, await org_id_of(pool, name), [
        Evaluation("stack", f"web/s{i}", BASE_TIME + timedelta(minutes=i),
                   [_violation(i, v, f"web/s{i}") for v in range(5)]) for i in range(6)])
    url = f"/api/orgs/{name}/violations?sort=-observedAt&page[size]=10"
    first = await get(client, token, url)
    seen = [item["id"] for item in first["violations"]]
    await pool.execute("DELETE FROM current_violations WHERE violation_id = ANY($1)",
                       seen[:4])
    second = await get(client, token, first["links"]["next"])
    newest_first = sorted(current, key=lambda c: (c.evaluation.at, c.id), reverse=True)
    assert [item["id"] for item in second["violations"]] == [
        c.id for c in newest_first[10:20]]


async def test_estimated_totals_still_page_exactly(client: TestClient, seeded,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # past the exact-count limit the total is the planner's guess; ``next`` must still
    # lead through every row once and stop at the end
    _counting_only(monkeypatch)
    org, token, current = seeded
    link: str | None = f"/api/orgs/{org}/violations?sort=-observedAt&page[size]=900"
    ids: list[int] = []
    while link:
        body = await get(client, token, link)
        meta = body["meta"]["page"]
        ids += [item["id"] for item in body["violations"]]
        if meta["next_number"] is not None:
            assert meta["total_estimated"] and meta["total"] > len(ids)
        else:
            assert (meta["total"], meta["total_estimated"]) == (5000, False)
        link = body["links"]["next"]
    assert sorted(ids) == sorted(c.id for c in current)
    beyond = await get(client, token, f"/api/orgs/{org}/violations?page[number]=9&page[size]=900")
    assert beyond["violations"] == [] and beyond["links"]["next"] is None


@pytest.mark.parametrize(("filters", "sort", "size"), [
    ({}, "", 450), ({"level": "advisory"}, "-level,observedAt", 333),
    ({"group": "prod"}, "pack,policy", 250), ({"entityType": "stack", "pack": "network"},
                                              "entity,-observedAt", 100),
    ({"policy": "rule-3", "level": "mandatory", "group": "shared"}, "policy,-level", 40),
    # led by pack or policy: a page starts at the value that holds it
    ({}, "-pack", 300), ({"level": "mandatory"}, "policy", 70),
    ({"group": "shared", "entityType": "stack"}, "-pack,observedAt", 60),
    # led by entity (or level, then entity): at the block of entities that holds it
    ({}, "-entity", 450), ({"group": "shared"}, "entity,-observedAt", 130),
    ({"level": "mandatory"}, "-level,entity,pack", 90)])
async def test_totals_are_exact_and_pages_by_number_read_from_the_nearer_end(
        client: TestClient, seeded, monkeypatch: pytest.MonkeyPatch, filters: dict[str, str],
        sort: str, size: int) -> None:
    # the violations' total comes from the compliance counts, exact past the count limit
    monkeypatch.setattr(result_pages, "EXACT_COUNT_LIMIT", 10)
    org, token, current = seeded
    expected = [c for c in current if all(_matches(c, n, v) for n, v in filters.items())]
    query = "&".join([*(f"filter[{n}]={v}" for n, v in filters.items()),
                      *([f"sort={sort}"] if sort else [])])
    url = f"/api/orgs/{org}/violations?{query}"
    first = await get(client, token, f"{url}&page[size]={size}")
    assert (first["meta"]["page"]["total"], first["meta"]["page"]["total_estimated"]) == (
        len(expected), False)
    # pages past the middle are read backwards from the end, by a smaller offset
    by_number = await fetch_by_number(client, token, url, size=size)
    assert [i["id"] for i in by_number] == _ordered(by_number, sort)
    assert sorted(i["id"] for i in by_number) == sorted(c.id for c in expected)
    last = len(expected) // size
    beyond = await get(client, token, f"{url}&page[number]={last + 1}&page[size]={size}")
    assert beyond["violations"] == [] and beyond["meta"]["page"]["total"] == len(expected)


def _matches(c: Current, name: str, value: str) -> bool:
    e, v = c.evaluation, c.violation
    return {"entity": e.entity_key == value, "entityType": e.entity_type == value,
            "group": value in v.groups, "pack": v.pack == value, "policy": v.policy == value,
            "level": v.level == value, "urn": v.urn == value}[name]


FILTERS = [("entity", "proj-1/stack-05"), ("entity", "acct-03"), ("entityType", "account"),
           ("entityType", "stack"), ("group", "shared"), ("group", "default-policy-group"),
           ("pack", "network"), ("policy", "rule-3"), ("level", "mandatory"),
           ("urn", "urn:acct-03:r42")]


@pytest.mark.parametrize(("name", "value"), FILTERS)
async def test_each_filter_narrows(client: TestClient, seeded, name: str, value: str) -> None:
    org, token, current = seeded
    items = await fetch_all(client, token, f"/api/orgs/{org}/violations?filter[{name}]={value}")
    expected = {c.id for c in current if _matches(c, name, value)}
    assert 0 < len(expected) < 5000
    assert [i["id"] for i in items] == sorted(expected)


async def test_a_group_filter_finds_the_orgs_rows_only(client: TestClient, seeded,
                                                       pool: asyncpg.Pool, new_org) -> None:
    # another org's members of a group of the same name are in the same GIN index
    org, token, current = seeded
    other, _ = await new_org()
    await seed(pool, await org_id_of(pool, other), [
        Evaluation("stack", f"web/s{i}", BASE_TIME, [_violation(0, v, "web") for v in range(9)])
        for i in range(20)])
    items = await fetch_all(client, token, f"/api/orgs/{org}/violations"
                                           "?filter[group]=shared", size=500)
    assert sorted(i["id"] for i in items) == sorted(
        c.id for c in current if "shared" in c.violation.groups)


async def test_filters_combine(client: TestClient, seeded) -> None:
    org, token, current = seeded
    items = await fetch_all(client, token, f"/api/orgs/{org}/violations?filter[level]=mandatory"
                            "&filter[pack]=tagging&filter[entityType]=account")
    expected = {c.id for c in current if c.violation.level == "mandatory"
                and c.violation.pack == "tagging" and c.evaluation.entity_type == "account"}
    assert expected and {i["id"] for i in items} == expected


def _sort_value(item: dict[str, Any], key: str) -> Any:
    entity = item["entity"]
    return {"level": item["level"], "pack": item["pack"], "policy": item["policy"],
            # accounts before stacks, each by name
            "entity": (entity["type"], f"{entity['project']}/{entity['stack']}"
                       if entity["type"] == "stack" else entity["account"]),
            "observedAt": item["observedAt"]}[key]


@pytest.mark.parametrize("sort", ["level", "-level", "pack", "-pack", "policy", "-policy",
                                  "entity", "-entity", "observedAt", "-observedAt",
                                  "-level,observedAt", "pack,-policy,entity"])
async def test_each_sort_orders(client: TestClient, seeded, sort: str) -> None:
    org, token, _ = seeded
    items = await fetch_all(client, token, f"/api/orgs/{org}/violations?sort={sort}")
    assert [i["id"] for i in items] == _ordered(items, sort)


async def test_violation_item(client: TestClient, seeded) -> None:
    org, token, current = seeded
    c = next(c for c in current if c.violation.urn == "urn:acct-03:r40")
    [item] = (await get(client, token,
                        f"/api/orgs/{org}/violations?filter[urn]=urn:acct-03:r40"))["violations"]
    v = c.violation
    assert item == {
        "id": c.id, "entity": {"type": "account", "org": org, "account": "acct-03"},
        "groups": v.groups, "pack": v.pack, "packVersion": 1, "versionTag": "1.0.0",
        "policy": v.policy, "level": v.level, "urn": v.urn, "message": v.message,
        "details": {"v": 40}, "observedAt": item["observedAt"],
        "evaluationId": str(c.evaluation.id)}
    assert item["observedAt"].startswith("2025-06-01T")


async def test_pulumi_shape(client: TestClient, seeded) -> None:
    org, token, current = seeded
    url = f"/api/orgs/{org}/policyresults/violationsv2"
    body = await get(client, token, f"{url}?filter[urn]=urn:proj-1/stack-05:r7")
    [stack] = body["policyViolations"]
    c = next(c for c in current if c.violation.urn == "urn:proj-1/stack-05:r7")
    assert stack == {"id": str(c.id), "projectName": "proj-1", "stackName": "stack-05",
                     "entityType": "stack", "policyPack": c.violation.pack,
                     "policyPackTag": "1.0.0", "policyName": c.violation.policy,
                     "resourceURN": "urn:proj-1/stack-05:r7", "message": c.violation.message,
                     "level": c.violation.level, "observedAt": stack["observedAt"]}
    assert body["meta"]["page"]["total"] == 1 and body["links"]["next"] is None
    [account] = (await get(client, token,
                           f"{url}?filter[urn]=urn:acct-01:r1"))["policyViolations"]
    assert (account["projectName"], account["stackName"], account["accountName"],
            account["entityType"]) == ("", "acct-01", "acct-01", "account")
    every = await fetch_all(client, token, f"{url}?filter[level]=mandatory",
                            key="policyViolations", size=500)
    assert len(every) == sum(1 for c in current if c.violation.level == "mandatory")


BAD = [
    ("filter[level]=fatal", "filter[level]: must be one of advisory, mandatory"),
    ("filter[entityType]=stacks", "filter[entityType]: must be one of stack, account"),
    ("filter[colour]=red", "unknown query parameter filter[colour]"),
    ("filters[level]=mandatory", "unknown query parameter filters[level]"),
    ("sort=severity", "sort: unknown key 'severity'"),
    ("sort=level,-level", "sort: key 'level' given more than once"),
    ("sort=", "sort: unknown key ''"),
    ("page[size]=1001", "page[size]: must be between 1 and 1000"),
    ("page[number]=-1", "page[number]: must be between 0"),
    ("page[number]=first", "page[number]: must be an integer"),
    ("filter[pack]=", "filter[pack]: must not be empty"),
    ("filter[entity]=web/prod/x", "filter[entity]: must be a stack as project/stack"),
    ("filter[entity]=stack:web/prod", "filter[entity]: must be a stack as project/stack"),
    ("filter[entity]=/prod", "filter[entity]: must be a stack as project/stack"),
    ("filter[entity]=", "filter[entity]: must be a stack as project/stack"),
    ("filter[pack]=a&filter[pack]=b", "filter[pack]: given more than once"),
    ("page[size]=10&page[size]=20", "page[size]: given more than once"),
    ("page[number]=1&page[number]=2", "page[number]: given more than once"),
]


@pytest.mark.parametrize(("query", "message"), BAD)
@pytest.mark.parametrize("path", ["violations", "policyresults/violationsv2"])
async def test_bad_parameters_name_the_parameter(client: TestClient, seeded, path: str,
                                                 query: str, message: str) -> None:
    org, token, _ = seeded
    body = await get(client, token, f"/api/orgs/{org}/{path}?{query}", status=400)
    assert body["code"] == 400 and message in body["message"], body


ROUTES = ["violations", "policyresults/violationsv2", "evaluations", "compliance"]


@pytest.mark.parametrize("path", ROUTES)
async def test_another_orgs_token_gets_404(client: TestClient, seeded, new_org,
                                           path: str) -> None:
    org, _, _ = seeded
    _, other_token = await new_org()
    body = await get(client, other_token, f"/api/orgs/{org}/{path}", status=404)
    assert body == {"code": 404, "message": f"Organization '{org}' not found"}
    resp = await client.get(f"/api/orgs/{org}/{path}")
    assert resp.status == 401


@pytest.mark.parametrize("path", ROUTES)
async def test_read_tokens_only(client: TestClient, seeded, path: str) -> None:
    org, admin, _ = seeded
    tokens = {}
    for role in ("member", "ingest"):
        resp = await client.post(f"/api/orgs/{org}/tokens", headers=auth(admin),
                                 json={"role": role})
        assert resp.status == 201, await resp.text()
        tokens[role] = (await resp.json())["token"]
    await get(client, tokens["member"], f"/api/orgs/{org}/{path}")
    await get(client, tokens["ingest"], f"/api/orgs/{org}/{path}", status=403)


async def _next_token(client: TestClient, token: str, url: str) -> str:
    body = await get(client, token, url)
    return link_query(body["links"]["next"])["page[after]"][0]


async def test_bad_or_foreign_tokens_are_refused(client: TestClient, seeded) -> None:
    org, token, _ = seeded
    url = f"/api/orgs/{org}/violations"
    after = await _next_token(client, token, f"{url}?sort=-level,observedAt")
    for query, message in [
        (f"sort=-level,observedAt&page[number]=1&page[after]={after[:-4]}", "page[after]: "),
        (f"sort=-level,observedAt&page[number]=1&page[after]={after[:-4]}AAAA",
         "page[after]: the token is damaged or was altered"),
        ("sort=-level,observedAt&page[number]=1&page[after]=bm90IGEgdG9rZW4",
         "page[after]: "),
        (f"sort=pack&page[number]=1&page[after]={after}",
         "page[after]: the token was made for sort=-level,observedAt, not sort=pack"),
        (f"page[number]=1&page[after]={after}",
         "page[after]: the token was made for sort=-level,observedAt, not sort=(default)"),
        (f"sort=-level,observedAt&filter[pack]=network&page[number]=1&page[after]={after}",
         "page[after]: the token was made for other filters"),
        (f"sort=-level,observedAt&page[number]=2&page[after]={after}",
         "page[after]: the token continues at row 100, not at page[number]=2"),
        (f"sort=-level,observedAt&page[number]=0&page[before]={after}",
         "page[before]: the token was made for page[after]"),
        (f"sort=-level,observedAt&page[number]=1&page[after]={after}&page[after]={after}",
         "page[after]: given more than once"),
    ]:
        body = await get(client, token, f"{url}?{query}", status=400)
        assert body["code"] == 400 and body["message"].startswith(message), (query, body)
    evaluations = await _next_token(client, token, f"/api/orgs/{org}/evaluations?page[size]=1")
    body = await get(client, token, f"{url}?page[size]=1&page[number]=1&page[after]="
                                    f"{evaluations}", status=400)
    assert body["message"] == "page[after]: the token belongs to another list (evaluations)"
    body = await get(client, token, f"/api/orgs/{org}/compliance?page[after]={after}",
                     status=400)
    assert "unknown query parameter page[after]" in body["message"]


async def test_bad_end_tokens_are_refused(client: TestClient, seeded) -> None:
    org, token, _ = seeded
    url = f"/api/orgs/{org}/violations?sort=pack,policy&page[size]=300"
    end = link_query((await get(client, token, url))["links"]["last"])["page[before]"][0]
    made_up = encode(ListIdentity.of("violations", (("pack", False), ("policy", False)), {}),
                     AFTER, 4800, [])
    for query, message in [
        (f"page[number]=15&page[before]={end}", "page[before]: the token continues at row "
                                                "4800, not at page[number]=15"),
        (f"page[number]=16&page[after]={end}", "page[after]: the token was made for "
                                               "page[before]"),
        (f"page[number]=16&page[after]={made_up}", "page[after]: the token's sort key must "
                                                   "hold 3 sort key values"),
    ]:
        body = await get(client, token, f"{url}&{query}", status=400)
        assert body["message"].startswith(message), (query, body)


async def test_tokens_work_for_both_shapes_of_the_list(client: TestClient, seeded) -> None:
    org, token, _ = seeded
    url = f"/api/orgs/{org}/violations?sort=policy,-level&page[size]=50"
    after = await _next_token(client, token, url)
    ours = await get(client, token, f"{url}&page[number]=1&page[after]={after}")
    pulumi = await get(client, token, f"/api/orgs/{org}/policyresults/violationsv2?"
                                      f"sort=policy,-level&page[size]=50&page[number]=1"
                                      f"&page[after]={after}")
    assert [str(i["id"]) for i in ours["violations"]] == [
        i["id"] for i in pulumi["policyViolations"]]
