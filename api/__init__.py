"""Gavel's HTTP API (aiohttp) and the outbox relay that publishes its changes to Kafka."""
