"""OPA access through opa-python-client's async client."""

from __future__ import annotations

from urllib.parse import urlsplit

from opa_client import AsyncOpaClient

from gavel.settings import OpaSettings


def opa_client(settings: OpaSettings) -> AsyncOpaClient:
    """A client for the configured OPA; enter it (``async with``) to open its session."""
    url = urlsplit(settings.url)
    return AsyncOpaClient(host=url.hostname or "127.0.0.1",
                          port=url.port or (443 if url.scheme == "https" else 80),
                          ssl=url.scheme == "https", timeout=settings.timeout, retries=0)
