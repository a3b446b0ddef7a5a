"""Accepted events leave for Kafka from the API at once; the relay covers what it misses."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from api.keys import EAGER_PUBLISHER
from gavel.evaluations import accept_event
from gavel.settings import Settings
from tests.e2e.test_evaluation_flow import CLEAN, result, send


async def _published(pool: asyncpg.Pool, evaluation_id: str) -> asyncpg.Record:
    for _ in range(200):
        row = await pool.fetchrow(
            """SELECT publish_after, published_at FROM outbox
               WHERE value ->> 'evaluationId' = $1""", evaluation_id)
        if row is not None and row["published_at"] is not None:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"outbox row of {evaluation_id} never published")


async def test_accepted_event_is_published_before_the_relay_would(
        client: TestClient, worker: Any, pool: asyncpg.Pool, new_org) -> None:
    org, token = await new_org()
    publisher = client.server.app[EAGER_PUBLISHER]
    for _ in range(200):  # its producer starts in the background with the app
        if publisher.grace > 0:
            break
        await asyncio.sleep(0.05)
    accepted = await send(client, token, org, "web", "prod", "preview", [CLEAN])
    row = await _published(pool, accepted["id"])
    assert row["publish_after"] is not None
    assert row["published_at"] < row["publish_after"]  # not the relay: it waits until then
    assert (await result(client, token, org, accepted["id"]))["outcome"] == "pass"


async def test_relay_publishes_an_event_its_publisher_never_sent(
        client: TestClient, worker: Any, pool: asyncpg.Pool, settings: Settings,
        new_org) -> None:
    """An API process that dies between commit and send: the row waits out its grace."""
    org, token = await new_org()
    org_id = await pool.fetchval("SELECT id FROM orgs WHERE name = $1", org)
    accepted = await accept_event(
        pool, org_id=org_id, org=org, topic=settings.kafka.topic_stack_events,
        key=f"{org}/web/prod", entity_type="stack", entity_key="web/prod", kind="preview",
        event_id=None, stack=("web", "prod"), publish_after=1.0,
        fields={"project": "web", "stack": "prod", "kind": "preview", "resources": [CLEAN]})
    row = await _published(pool, str(accepted.evaluation_id))
    assert row["published_at"] >= row["publish_after"]
    body = await result(client, token, org, str(accepted.evaluation_id))
    assert body["outcome"] == "pass"
