"""The producers' partitioner sends a key where Kafka's Java clients and aiokafka's
default partitioner send it, however often the key comes and however full its memory."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner

from gavel.kafka import KeyPartitioner

# murmur2 of these keys as Kafka's Java client computes it (Utils.murmur2, signed)
JAVA_MURMUR2 = {b"21": -973932308, b"foobar": -790332482,
                b"a-little-bit-long-string": -985981536, b"abc": 479470107}


@pytest.mark.parametrize("partitions", [1, 3, 4, 12, 50])
def test_a_key_goes_to_the_partition_java_clients_choose(partitions: int) -> None:
    partitioner = KeyPartitioner()
    all_partitions = list(range(partitions))
    for key, hashed in JAVA_MURMUR2.items():
        expected = (hashed & 0x7FFFFFFF) % partitions
        assert partitioner(key, all_partitions, all_partitions) == expected
        assert partitioner(key, all_partitions, all_partitions) == expected  # remembered


def test_it_agrees_with_the_default_partitioner_while_its_memory_starts_over() -> None:
    rng = random.Random(7)
    keys = [f"org-{rng.randrange(50)}/web/stack-{rng.randrange(500)}".encode()
            for _ in range(2000)]
    partitioner, default = KeyPartitioner(kept=100), DefaultPartitioner()
    for key in keys:
        all_partitions = list(range(rng.choice((1, 4, 7))))
        assert (partitioner(key, all_partitions, all_partitions)
                == default(key, all_partitions, all_partitions))
    assert len(partitioner._hashes) <= 100


def test_a_message_without_key_goes_to_an_available_partition() -> None:
    partitioner = KeyPartitioner()
    chosen = {partitioner(None, [0, 1, 2, 3], [1, 3]) for _ in range(200)}
    assert chosen == {1, 3}
