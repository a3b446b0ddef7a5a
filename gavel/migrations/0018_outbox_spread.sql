-- A row may name its place in a spread instead of leaving its partition to a hash of its
-- key: the relay sends it to the topic's partition (spread mod partitions). An audit's
-- chunks are numbered in order, so they take the partitions in turn and the workers
-- that own them get even shares; 20 chunks hashed onto 4 partitions often left one of
-- two workers twice the other's.
ALTER TABLE outbox ADD COLUMN spread integer CHECK (spread >= 0);
