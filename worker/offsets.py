"""Which offsets may be committed: only those below every message still in flight."""

from __future__ import annotations

from aiokafka import TopicPartition


class PartitionOffsets:
    __slots__ = ("highest_done", "in_flight")

    def __init__(self) -> None:
        self.in_flight: set[int] = set()
        self.highest_done = -1

    def committable(self) -> int | None:
        """The next offset to read after a restart, or None if nothing finished yet."""
        if self.in_flight:
            return min(self.in_flight)
        return self.highest_done + 1 if self.highest_done >= 0 else None


class OffsetTracker:
    def __init__(self) -> None:
        self._partitions: dict[TopicPartition, PartitionOffsets] = {}
        self._committed: dict[TopicPartition, int] = {}

    def started(self, tp: TopicPartition, offset: int) -> None:
        self._partitions.setdefault(tp, PartitionOffsets()).in_flight.add(offset)

    def finished(self, tp: TopicPartition, offset: int) -> None:
        partition = self._partitions.get(tp)
        if partition is None:  # revoked meanwhile; its work is redelivered elsewhere
            return
        partition.in_flight.discard(offset)
        partition.highest_done = max(partition.highest_done, offset)

    def in_flight(self, tp: TopicPartition) -> int:
        partition = self._partitions.get(tp)
        return len(partition.in_flight) if partition else 0

    def to_commit(self, only: set[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """Offsets that moved since the last commit."""
        ready = {}
        for tp, partition in self._partitions.items():
            if only is not None and tp not in only:
                continue
            offset = partition.committable()
            if offset is not None and offset > self._committed.get(tp, -1):
                ready[tp] = offset
        return ready

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        self._committed.update(offsets)

    def forget(self, tps: set[TopicPartition]) -> None:
        for tp in tps:
            self._partitions.pop(tp, None)
            self._committed.pop(tp, None)
