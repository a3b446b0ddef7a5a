"""What would not fit in a Kafka message: an event is refused up front, a group's
snapshot is left for its readers to load from Postgres."""

from __future__ import annotations

import asyncio
import io

import asyncpg
import orjson
from aiohttp.test_utils import TestClient, TestServer

from api.app import create_app
from gavel.group_snapshot import SNAPSHOT_LIMIT, record_group_change
from gavel.kafka import ensure_topics
from gavel.settings import Settings
from tests.group_api import error_of
from tests.group_events import org_events
from tests.helpers import auth
from tests.policy_setup import make_group, org_id, publish
from worker.group_sync import GroupSync
from worker.index import STACKS, GroupIndex, GroupRef

MIB = 1024 * 1024


def _event(resources: int, padding: int) -> io.BytesIO:
    """A stack event's body (large: aiohttp wants large bodies as a stream)."""
    return io.BytesIO(orjson.dumps({"kind": "update", "resources": [
        {"urn": f"urn:pulumi:s::p::aws:s3/bucket:Bucket::b{i}", "type": "aws:s3/bucket:Bucket",
         "name": f"b{i}", "properties": {"description": "x" * padding}}
        for i in range(resources)]}))


async def test_an_event_larger_than_a_kafka_message_is_refused_and_nothing_is_written(
        settings: Settings, pool: asyncpg.Pool, new_org) -> None:
    org, token = await new_org()
    small = settings.model_copy(update={"kafka": settings.kafka.model_copy(
        update={"max_message_bytes": MIB})})
    async with TestClient(TestServer(create_app(small))) as client:
        # about 1.2 MB as JSON: within the 4 MiB body limit, over the 1 MiB message
        headers = {**auth(token), "Content-Type": "application/json"}
        resp = await client.post(f"/api/stacks/{org}/web/big/events", headers=headers,
                                 data=_event(1100, 1000))
        message = await error_of(resp, 400)
        assert message.startswith("resources: the event would be ")
        assert f"over the limit of {MIB} bytes of a Kafka message" in message
        # one under the limit is accepted
        resp = await client.post(f"/api/stacks/{org}/web/big/events", headers=headers,
                                 data=_event(800, 1000))
        assert resp.status == 202, await resp.text()
    oid = await org_id(pool, org)
    assert await pool.fetchval("SELECT count(*) FROM evaluations WHERE org_id = $1", oid) == 1
    assert await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE key = $1", f"{org}/web/big") == 1


async def test_a_group_too_large_for_a_message_reaches_the_workers_index_from_postgres(
        client: TestClient, settings: Settings, pool: asyncpg.Pool, new_org) -> None:
    org, _ = await new_org()
    await ensure_topics(settings.kafka)
    version_id = await publish(pool, org)
    group_id = await make_group(pool, settings, org, "everything", packs=[(version_id, {})])
    sync = GroupSync(pool, settings.kafka, GroupIndex())
    await sync.start()
    try:
        oid = await org_id(pool, org)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """WITH named AS (
                       INSERT INTO stacks (org_id, project, name)
                       SELECT $1, 'web', 'stack-number-' || lpad(i::text, 5, '0')
                       FROM generate_series(1, 15000) AS i RETURNING id)
                   INSERT INTO policy_group_stacks (group_id, stack_id)
                   SELECT $2, id FROM named""", oid, group_id)
            revision = await record_group_change(conn, oid, group_id, "updated",
                                                 settings.kafka.topic_group_changes)
        for _ in range(300):
            if (sync.index.revision(org) or 0) >= revision:
                break
            await asyncio.sleep(0.1)
        [applied] = sync.index.resolve(org, STACKS, "web/stack-number-12345")
        assert applied.version_id == version_id
        assert applied.groups == (GroupRef("everything", "preventative"),)
        assert sync.index.resolve(org, STACKS, "web/not-a-member") == ()  # the default's
    finally:
        await sync.stop()

    events = await org_events(settings.kafka, settings.kafka.topic_group_changes, org,
                              await pool.fetchval("SELECT count(*) FROM outbox WHERE key = $1",
                                                  org))
    [large] = [e for e in events if e["revision"] == revision]
    assert large["reload"] is True and large["group"] is None
    assert large["groupId"] == group_id and large["change"] == "updated"
    smaller = [e for e in events if e["groupId"] == group_id and e["revision"] < revision]
    assert smaller and all("reload" not in e and e["group"] for e in smaller)
    assert SNAPSHOT_LIMIT < 15000 * len('{"name":"stack-number-00000","routingProject":"web"},')
