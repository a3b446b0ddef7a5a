"""Group changes reach Kafka through the outbox: one event per change, in revision order."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from gavel.kafka import ensure_topics
from gavel.settings import Settings
from tests.group_api import GroupApi, stack_ref
from tests.group_events import org_events


async def test_concurrent_patches_all_land_and_publish_in_revision_order(
        client: TestClient, new_org, settings: Settings) -> None:
    org, token = await new_org()
    api = GroupApi(client, org, token)
    await ensure_topics(settings.kafka)
    stacks = [f"s{i:02d}" for i in range(50)]
    for stack in stacks:
        assert (await api.put_stack("web", stack)).status == 201
    assert (await api.create(name="busy")).status == 204

    responses = await asyncio.gather(*(
        api.patch("busy", {"addStack": stack_ref("web", stack)}) for stack in stacks))
    assert [r.status for r in responses] == [204] * 50
    group = await api.get("busy")
    assert sorted(s["name"] for s in group["stacks"]) == stacks

    events = await org_events(settings.kafka, settings.kafka.topic_group_changes, org, 51)
    assert len(events) == 51, [e["change"] for e in events]
    revisions = [e["revision"] for e in events]
    assert revisions == sorted(set(revisions)), revisions
    assert [e["change"] for e in events] == ["created"] + ["updated"] * 50
    assert len({e["eventId"] for e in events}) == 51
    # each event carries the group as it was after its own change
    sizes = [len(e["group"]["stacks"]) for e in events[1:]]
    assert sizes == list(range(1, 51))
    assert events[-1]["group"]["name"] == "busy"


async def test_every_kind_of_change_is_one_event(client: TestClient, new_org,
                                                 settings: Settings) -> None:
    org, token = await new_org()
    api = GroupApi(client, org, token)
    await ensure_topics(settings.kafka)
    await api.put_stack("web", "a")
    await api.add_account("aws")
    assert (await api.create(name="g")).status == 204
    assert (await api.create(name="c", entityType="accounts")).status == 204
    assert (await api.patch("g", {"addStack": stack_ref("web", "a"),
                                  "agentPoolId": "p"})).status == 204
    assert (await api.batch("g", [{"newName": "g2"}, {"agentPoolId": ""}])).status == 204
    assert (await api.patch("c", {"addInsightsAccount": {"name": "aws"}})).status == 204
    assert (await client.delete(f"/api/orgs/{org}/accounts/aws",
                                headers=api.headers)).status == 204
    assert (await api.delete("g2")).status == 204
    # refused changes record nothing
    assert (await api.patch("c", {"addInsightsAccount": {"name": "ghost"}})).status == 404

    events = await org_events(settings.kafka, settings.kafka.topic_group_changes, org, 7)
    assert [(e["change"], (e["group"] or {}).get("name")) for e in events] == [
        ("created", "g"), ("created", "c"), ("updated", "g"), ("renamed", "g2"),
        ("updated", "c"), ("updated", "c"), ("deleted", None)]
    assert [e["revision"] for e in events] == list(range(1, 8))
    assert events[4]["group"]["accounts"] == ["aws"]
    assert events[5]["group"]["accounts"] == []
    assert events[6]["deleted"] is True
