"""Waiting until N workers share a topic's partitions in their consumer group, so a
timed run does not include joining and rebalancing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from gavel.settings import KafkaSettings


def _partitions_per_member(description: Any, topic: str) -> tuple[str, list[int]]:
    """(state, partitions of ``topic`` per member) from a DescribeGroups answer."""
    _error, _group, state, _protocol_type, _protocol, members = description.groups[0][:6]
    counts = []
    for member in members:
        raw = member[4]
        assignment = ConsumerProtocolMemberAssignment.decode(raw) if raw else None
        counts.append(sum(len(partitions) for name, partitions in
                          (assignment.assignment if assignment else []) if name == topic))
    return state, counts


async def wait_until_shared(kafka: KafkaSettings, group: str, topic: str, members: int,
                            timeout: float = 120.0) -> list[int]:
    """Wait until ``members`` consumers of ``group`` each own partitions of ``topic``;
    return how many partitions each owns."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            [description] = await admin.describe_consumer_groups([group])
            state, counts = _partitions_per_member(description, topic)
            if state == "Stable" and len(counts) == members and all(counts):
                return counts
            if time.monotonic() > deadline:
                raise SystemExit(f"consumer group {group}: {state}, partitions of {topic} "
                                 f"per member {counts}; wanted {members} members "
                                 f"after {timeout:.0f}s")
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
