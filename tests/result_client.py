"""Reading paged result lists over HTTP in tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp.test_utils import TestClient

from tests.helpers import auth


async def get(client: TestClient, token: str, url: str, status: int = 200) -> dict[str, Any]:
    resp = await client.get(url, headers=auth(token))
    body = await resp.json()
    assert resp.status == status, body
    return body


def link_query(link: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(link).query)


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


async def fetch_by_number(client: TestClient, token: str, url: str, key: str = "violations",
                          size: int = 1000) -> list[dict[str, Any]]:
    """Every item, asking for page 0, 1, 2, ... by number alone (no token)."""
    sep = "&" if "?" in url else "?"
    items: list[dict[str, Any]] = []
    number = 0
    while True:
        body = await get(client, token, f"{url}{sep}page[size]={size}&page[number]={number}")
        items += body[key]
        if body["meta"]["page"]["next_number"] is None:
            assert len(items) == body["meta"]["page"]["total"]
            return items
        number += 1


async def fetch_backwards(client: TestClient, token: str, last: str,
                          key: str = "violations",
                          first_number: int | None = 0) -> list[dict[str, Any]]:
    """Every item from the page at ``last`` back to the first, following ``links.prev``;
    answered in list order. The first page is numbered ``first_number`` (None: any, as
    when an estimated total numbered the pages from the end too high)."""
    pages: list[list[dict[str, Any]]] = []
    link: str | None = last
    while link:
        body = await get(client, token, link)
        pages.append(body[key])
        link = body["links"]["prev"]
        if link:
            assert "page[before]" in link_query(link)
    assert body["meta"]["page"]["prev_number"] is None
    if first_number is not None:
        assert body["meta"]["page"]["number"] == first_number
    return [item for page in reversed(pages) for item in page]
