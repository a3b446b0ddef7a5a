"""The worker process: owns its resources and runs until told to stop."""

from __future__ import annotations

import asyncio
import logging

from gavel.kafka import ensure_topics
from gavel.settings import Settings

log = logging.getLogger(__name__)


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    await ensure_topics(settings.kafka)
    log.info("worker started")
    await stop.wait()
    log.info("worker stopped")
