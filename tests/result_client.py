"""Reading paged result lists over HTTP in tests."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers import auth


async def get(client: TestClient, token: str, url: str, status: int = 200) -> dict[str, Any]:
    resp = await client.get(url, headers=auth(token))
    body = await resp.json()
    assert resp.status == status, body
    return body


async def fetch_all(client: TestClient, token: str, url: str, key: str = "violations",
                    size: int = 1000) -> list[dict[str, Any]]:
    """Every item, following ``links.next`` from the first page to the last."""
    sep = "&" if "?" in url else "?"
    link: str | None = f"{url}{sep}page[size]={size}"
    items: list[dict[str, Any]] = []
    pages = 0
    while link:
        body = await get(client, token, link)
        meta = body["meta"]["page"]
        assert meta["number"] == pages and meta["size"] == size
        items += body[key]
        assert len(body[key]) == (size if meta["next_number"] is not None
                                  else meta["total"] - pages * size)
        link = body["links"]["next"]
        pages += 1
    assert pages == meta["last_number"] + 1
    assert len(items) == meta["total"]
    return items
