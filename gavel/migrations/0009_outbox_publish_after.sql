-- Events accepted over HTTP are published to Kafka by the API process that accepted
-- them, right after commit. The relay leaves such a row alone until publish_after, and
-- publishes it then only if that publisher did not get to (it crashed, Kafka refused).
ALTER TABLE outbox ADD COLUMN publish_after timestamptz;
