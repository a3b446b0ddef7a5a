"""The dev stack's and the compose file's brokers take on every topic the largest batch
Gavel's own topics allow at the default GAVEL_KAFKA_MAX_MESSAGE_BYTES."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from gavel.kafka import batch_limit
from gavel.settings import KafkaSettings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_the_brokers_take_the_largest_batch_of_the_default_setting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("devstack", DEPLOY / "local" / "devstack.py")
    assert spec is not None and spec.loader is not None
    devstack = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "devstack", devstack)  # its dataclasses look it up
    spec.loader.exec_module(devstack)
    largest = batch_limit(KafkaSettings(bootstrap_servers="127.0.0.1:9"))
    assert devstack.MESSAGE_MAX_BYTES == largest
    assert f"KAFKA_MESSAGE_MAX_BYTES: {largest}\n" in (DEPLOY / "compose.yaml").read_text()
