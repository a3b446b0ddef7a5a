"""Code shared by Gavel's API and worker processes.

Settings, the Postgres pool and migrations, event schemas, the Kafka and OPA
wrappers live here. ``api`` and ``worker`` import this package and never each other.
"""

__version__ = "0.1.0"
