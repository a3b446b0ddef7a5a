"""With Kafka unreachable, group changes wait in the outbox; once it is back they
arrive in order, each once.

Runs in a database of its own: the relay of the session's API app holds the relay
lock of the session database and would publish the rows itself.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio

from api.background import background
from api.outbox_relay import OutboxRelay
from gavel.db import create_pool
from gavel.group_updates import update_group
from gavel.orgs import create_org
from gavel.outbox import backlog
from gavel.policy_group_models import NewPolicyGroup, PolicyGroupUpdate
from gavel.policy_groups import create_group
from gavel.settings import KafkaSettings, Settings
from tests.group_events import org_events
from tests.helpers import create_topic, migrated_database


@pytest_asyncio.fixture
async def own_database(stack_env: dict[str, str]) -> AsyncIterator[str]:
    async with migrated_database(stack_env["GAVEL_DATABASE_URL"],
                                 f"gavel_test_outbox_{uuid.uuid4().hex[:8]}") as url:
        yield url


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def make_changes(pool: asyncpg.Pool, topic: str) -> str:
    org = f"org-{uuid.uuid4().hex[:8]}"
    org_id, _ = await create_org(pool, org)
    await create_group(pool, org_id, NewPolicyGroup(name="g"), topic)
    for i in range(19):
        await update_group(pool, org_id, "g", [PolicyGroupUpdate(agentPoolId=f"pool-{i}")],
                           topic)
    return org


async def test_changes_wait_for_kafka_and_arrive_once_in_order(
        own_database: str, settings: Settings) -> None:
    topic = await create_topic(settings.kafka, "test-outbox")
    pool = await create_pool(settings.database.model_copy(update={"url": own_database}))
    try:
        down = KafkaSettings(bootstrap_servers=f"127.0.0.1:{closed_port()}")
        dead_relay = OutboxRelay(own_database, down, sweep_interval=0.2)
        async with background(dead_relay.run(), "outbox-relay"):
            org = await make_changes(pool, topic)
            await asyncio.sleep(3)
            assert dead_relay.published == 0
            assert await backlog(pool) == 20

        live_relay = OutboxRelay(own_database, settings.kafka, sweep_interval=0.2)
        async with background(live_relay.run(), "outbox-relay"):
            for _ in range(300):
                if await backlog(pool) == 0:
                    break
                await asyncio.sleep(0.1)
            assert await backlog(pool) == 0
        assert live_relay.published == 20
    finally:
        await pool.close()

    events = await org_events(settings.kafka, topic, org, 20)
    assert [e["revision"] for e in events] == list(range(1, 21))
    assert [e["change"] for e in events] == ["created"] + ["updated"] * 19
    assert [e["group"]["agentPoolId"] for e in events[1:]] == [f"pool-{i}" for i in range(19)]
    assert len({e["eventId"] for e in events}) == 20
