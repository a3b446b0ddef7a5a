"""OPA access through opa-python-client's async client."""

from __future__ import annotations

from urllib.parse import urlsplit

from opa_client import AsyncOpaClient

from gavel.settings import OpaSettings


def opa_client(settings: OpaSettings, url: str | None = None) -> AsyncOpaClient:
    """A client for the configured OPA (or the one at ``url``); enter it (``async with``)
    to open its session."""
    parts = urlsplit(url or settings.url)
    return AsyncOpaClient(host=parts.hostname or "127.0.0.1",
                          port=parts.port or (443 if parts.scheme == "https" else 80),
                          ssl=parts.scheme == "https", timeout=settings.timeout, retries=0)
