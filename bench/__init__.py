"""Benchmarks run by hand: ``python -m bench <name> [--json FILE] [options]``.

Each benchmark takes its servers from ``GAVEL_DATABASE_URL``,
``GAVEL_KAFKA_BOOTSTRAP_SERVERS`` and ``GAVEL_OPA_URL`` (``make bench`` sets them),
works in a database and topics of its own, removes them afterwards, and prints a
table of figures. Nothing here asserts on timings.
"""
