"""A worker started alone serves its own ``/metrics`` on the loopback port it is given."""

from __future__ import annotations

import asyncio
import socket
import uuid

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gavel.kafka import TOPIC_FIELDS, make_producer
from gavel.settings import Settings
from worker.metrics_server import metrics_server
from worker.service import run_worker


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def outward_address() -> str:
    """The address this host would use to reach others (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 1))
        address = str(probe.getsockname()[0])
    assert address != "127.0.0.1", "this host has no address besides loopback"
    return address


async def scrape(session: aiohttp.ClientSession, port: int) -> dict[tuple[str, str], float]:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    return {(s.name, s.labels.get("topic", "")): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


async def test_port_zero_serves_nothing_and_a_port_serves_loopback_only() -> None:
    port = free_port()
    async with metrics_server(0):
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
    async with metrics_server(port), aiohttp.ClientSession() as session:
        found = await scrape(session, port)
        assert ("python_info", "") in found
        # the Postgres gauges are the API's: a worker alone does not pretend to know them
        assert ("gavel_outbox_backlog", "") not in found
        # no token on this endpoint: it must not answer on the host's other addresses
        with pytest.raises(OSError):
            await asyncio.open_connection(outward_address(), port)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_worker_alone_serves_its_metrics(settings: Settings) -> None:
    """A worker on topics of its own, so the counts are exactly its own."""
    run = uuid.uuid4().hex[:8]
    port = free_port()
    kafka = settings.kafka.model_copy(update={
        "consumer_group": f"metrics-{run}",
        **{field: f"metrics-{run}.{field}" for field in TOPIC_FIELDS}})
    alone = settings.model_copy(update={
        "kafka": kafka, "worker": settings.worker.model_copy(update={"metrics_port": port})})
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(alone, stop))
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    await scrape(session, port)
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            producer = make_producer(kafka)
            await producer.start()
            try:
                await producer.send_and_wait(kafka.topic_stack_events, b"{not json")
            finally:
                await producer.stop()
            found: dict[tuple[str, str], float] = {}
            for _ in range(150):
                found = await scrape(session, port)
                if found.get(("gavel_dead_letters_total", kafka.topic_stack_events)):
                    break
                await asyncio.sleep(0.2)
            assert found[("gavel_events_consumed_total", kafka.topic_stack_events)] == 1
            assert found[("gavel_dead_letters_total", kafka.topic_stack_events)] == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
