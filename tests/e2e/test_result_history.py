"""Evaluation history over HTTP: newest first, every filter, the summary of each
evaluation, and bad parameters. Evaluations are written straight to Postgres."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from gavel import result_pages
from gavel.orgs import create_org
from tests.result_client import fetch_all, fetch_backwards, fetch_by_number, get, link_query
from tests.result_seed import BASE_TIME, Evaluation, Violation, seed

AUDIT = uuid.uuid4()
KINDS = ["preview", "update", "refresh", "destroy"]


def _violations(n: int, level: str) -> list[Violation]:
    return [Violation("baseline", f"rule-{k}", level, ["prod"], urn=f"urn:{k}")
            for k in range(n)]


def dataset() -> list[Evaluation]:
    evaluations = []
    for i in range(60):
        at = BASE_TIME + timedelta(minutes=(i * 37) % 60)  # not in insertion order
        level = "mandatory" if i % 5 == 0 else "advisory"
        if i % 4 == 3:
            evaluations.append(Evaluation("account", f"acct-{i % 3}", at, _violations(i % 3, level),
                                          kind="audit" if i % 8 == 7 else "scan",
                                          audit_id=AUDIT if i % 8 == 7 else None))
        else:
            evaluations.append(Evaluation("stack", f"web/s{i % 6}", at, _violations(i % 4, level),
                                          kind=KINDS[i % 4]))
    return evaluations


@pytest_asyncio.fixture(scope="module")
async def history(pool: asyncpg.Pool) -> AsyncIterator[tuple[str, str, list[Evaluation]]]:
    name = f"org-{uuid.uuid4().hex[:8]}"
    org_id, token = await create_org(pool, name)
    evaluations = dataset()
    await seed(pool, org_id, evaluations)
    pending = uuid.uuid4()
    await pool.execute(
        """INSERT INTO evaluations (id, org_id, event_id, entity_type, entity_key, kind, status,
                                    resource_count, occurred_at, received_at)
           VALUES ($1, $2, 'pending-one', 'stack', 'web/s0', 'preview', 'pending', 3, $3, $3)""",
        pending, org_id, BASE_TIME + timedelta(hours=2))
    yield name, token, evaluations
    await pool.execute("DELETE FROM orgs WHERE id = $1", org_id)


async def evaluations(client: TestClient, token: str, org: str,
                      query: str = "") -> list[dict[str, Any]]:
    return await fetch_all(client, token, f"/api/orgs/{org}/evaluations?{query}",
                           key="evaluations", size=7)


async def test_newest_first_with_a_summary_of_each(client: TestClient, history) -> None:
    org, token, seeded = history
    items = await evaluations(client, token, org)
    assert len(items) == len(seeded) + 1
    pending, *finished = items
    assert pending["status"] == "pending" and pending["violationCount"] is None
    assert pending["outcome"] is None and pending["resourceCount"] == 3
    expected = sorted(seeded, key=lambda e: (-e.at.timestamp(), str(e.id)))
    assert [i["id"] for i in finished] == [str(e.id) for e in expected]
    e = expected[0]
    assert finished[0] == {
        "id": str(e.id), "eventId": str(e.id), "entity": finished[0]["entity"],
        "kind": e.kind, "status": "finished", "outcome": e.outcome,
        "blocking": e.outcome == "mandatory" and e.kind in ("preview", "update"),
        "resourceCount": 1, "violationCount": len(e.violations),
        "receivedAt": e.at.isoformat(), "occurredAt": e.at.isoformat(),
        "finishedAt": (e.at + timedelta(seconds=1)).isoformat(),
        "auditId": str(AUDIT) if e.audit_id else None}
    accounts = [i for i in items if i["entity"]["type"] == "account"]
    assert accounts[0]["entity"] == {"type": "account", "org": org,
                                     "account": accounts[0]["entity"]["account"]}


def _expected(seeded: list[Evaluation], name: str, value: str) -> set[str]:
    def keep(e: Evaluation) -> bool:
        blocking = e.outcome == "mandatory" and e.kind in ("preview", "update")
        return {"entity": e.entity_key == value, "entityType": e.entity_type == value,
                "kind": e.kind == value, "outcome": e.outcome == value,
                "blocking": str(blocking).lower() == value,
                "audit": str(e.audit_id) == value,
                "since": e.at >= BASE_TIME + timedelta(minutes=30),
                "until": e.at < BASE_TIME + timedelta(minutes=30)}[name]

    return {str(e.id) for e in seeded if keep(e)}


FILTERS = [("entity", "web/s2"), ("entity", "acct-1"), ("entityType", "account"),
           ("kind", "refresh"), ("kind", "audit"), ("outcome", "mandatory"),
           ("outcome", "pass"), ("blocking", "true"), ("blocking", "false"),
           ("audit", str(AUDIT)), ("since", "2025-06-01T00:30:00Z"),
           ("until", "2025-06-01T02:30:00+02:00")]


@pytest.mark.parametrize(("name", "value"), FILTERS)
async def test_each_filter_narrows(client: TestClient, history, name: str, value: str) -> None:
    org, token, seeded = history
    # the pending evaluation (received last) is left out by filter[status]
    query = f"filter[{name}]={value.replace('+', '%2B')}&filter[status]=finished"
    items = await evaluations(client, token, org, query)
    expected = _expected(seeded, name, value)
    assert 0 < len(expected) < len(seeded)
    assert {i["id"] for i in items} == expected
    received = [i["receivedAt"] for i in items]
    assert received == sorted(received, reverse=True)


async def test_status_filter(client: TestClient, history) -> None:
    org, token, seeded = history
    [pending] = await evaluations(client, token, org, "filter[status]=pending")
    assert pending["eventId"] == "pending-one"
    finished = await evaluations(client, token, org, "filter[status]=finished&filter[kind]=scan")
    assert {i["id"] for i in finished} == {str(e.id) for e in seeded if e.kind == "scan"}


BAD = [
    ("filter[since]=yesterday", "filter[since]: must be an RFC 3339 time"),
    ("filter[until]=2025-06-01T00:00:00", "filter[until]: must be an RFC 3339 time with a "
                                          "time zone"),
    ("filter[blocking]=yes", "filter[blocking]: must be true or false"),
    ("filter[audit]=42", "filter[audit]: must be a UUID"),
    ("filter[entity]=web/prod/x", "filter[entity]: must be a stack as project/stack"),
    ("filter[kind]=apply", "filter[kind]: must be one of preview, update, refresh, destroy, "
                           "scan, audit"),
    ("filter[outcome]=failed", "filter[outcome]: must be one of pass, advisory, mandatory, "
                               "error"),
    ("filter[level]=mandatory", "unknown query parameter filter[level]"),
    ("sort=kind", "unknown query parameter sort"),
    ("page[size]=5000", "page[size]: must be between 1 and 1000"),
]


@pytest.mark.parametrize(("query", "message"), BAD)
async def test_bad_parameters_name_the_parameter(client: TestClient, history, query: str,
                                                 message: str) -> None:
    org, token, _ = history
    body = await get(client, token, f"/api/orgs/{org}/evaluations?{query}", status=400)
    assert message in body["message"], body


async def test_single_evaluation_route_still_answers(client: TestClient, history) -> None:
    org, token, seeded = history
    body = await get(client, token, f"/api/orgs/{org}/evaluations/{seeded[0].id}")
    assert body["id"] == str(seeded[0].id) and len(body["violations"]) == len(
        seeded[0].violations)
    await get(client, token, f"/api/orgs/{org}/evaluations/{uuid.uuid4()}", status=404)


@pytest_asyncio.fixture(scope="module")
async def tied(pool: asyncpg.Pool) -> AsyncIterator[tuple[str, str, list[Evaluation]]]:
    """45 evaluations received at only 4 distinct times: pages end inside a tie."""
    name = f"org-{uuid.uuid4().hex[:8]}"
    org_id, token = await create_org(pool, name)
    evaluations = [Evaluation("stack", f"web/s{i % 9}", BASE_TIME + timedelta(minutes=i % 4),
                              _violations(i % 2, "mandatory"),
                              kind="update" if i % 3 else "refresh")
                   for i in range(45)]
    await seed(pool, org_id, evaluations)
    yield name, token, evaluations
    await pool.execute("DELETE FROM orgs WHERE id = $1", org_id)


@pytest.mark.parametrize("query", ["", "filter[blocking]=false", "filter[kind]=update"])
async def test_following_links_returns_each_evaluation_once_in_order(
        client: TestClient, tied, query: str) -> None:
    org, token, seeded = tied
    url = f"/api/orgs/{org}/evaluations?{query}"
    name, _, value = query.removeprefix("filter[").partition("]=")
    first = await get(client, token, f"{url}&page[size]=4")
    assert "page[after]" in link_query(first["links"]["next"])
    items = await evaluations(client, token, org, query)
    expected = _expected(seeded, name, value) if query else {str(e.id) for e in seeded}
    assert 0 < len(expected) < 45 or not query
    ordered = sorted((e for e in seeded if str(e.id) in expected),
                     key=lambda e: (-e.at.timestamp(), str(e.id)))
    assert [i["id"] for i in items] == [str(e.id) for e in ordered]
    by_number = await fetch_by_number(client, token, url.rstrip("?"), key="evaluations", size=7)
    assert [i["id"] for i in by_number] == [str(e.id) for e in ordered]
    backwards = await fetch_backwards(client, token, first["links"]["last"], key="evaluations")
    assert [i["id"] for i in backwards] == [str(e.id) for e in ordered]


@pytest.mark.parametrize(("query", "counted"), [
    ("", True), ("filter[kind]=update", True), ("filter[entityType]=stack", True),
    ("filter[blocking]=false", False)])
async def test_the_total_is_exact_by_the_counts_of_evaluations_received(
        client: TestClient, tied, monkeypatch: pytest.MonkeyPatch, query: str,
        counted: bool) -> None:
    # past the exact-count limit the total is the planner's estimate, unless the counts by
    # hour received are kept by every filter
    monkeypatch.setattr(result_pages, "EXACT_COUNT_LIMIT", 10)
    org, token, seeded = tied
    name, _, value = query.removeprefix("filter[").partition("]=")
    expected = _expected(seeded, name, value) if query else {str(e.id) for e in seeded}
    url = f"/api/orgs/{org}/evaluations?{query}"
    for number in (0, 2, 4):
        body = await get(client, token, f"{url}&page[size]=7&page[number]={number}")
        # (the last page of an estimated total tells it exactly)
        if body["links"]["next"] is not None:
            assert body["meta"]["page"]["total_estimated"] is not counted
        if counted:
            assert not body["meta"]["page"]["total_estimated"]
            assert body["meta"]["page"]["total"] == len(expected)
            assert body["meta"]["page"]["last_number"] == (len(expected) - 1) // 7


async def test_an_evaluation_token_is_refused_elsewhere(client: TestClient, tied) -> None:
    org, token, _ = tied
    first = await get(client, token, f"/api/orgs/{org}/evaluations?page[size]=4")
    after = link_query(first["links"]["next"])["page[after]"][0]
    body = await get(client, token, f"/api/orgs/{org}/evaluations?page[size]=4&page[number]=1"
                                    f"&filter[kind]=update&page[after]={after}", status=400)
    assert body["message"] == "page[after]: the token was made for other filters"
    body = await get(client, token, f"/api/orgs/{org}/evaluations?page[size]=5&page[number]=1"
                                    f"&page[after]={after}", status=400)
    assert body["message"].startswith("page[after]: the token continues at row 4")
