"""The OpenAPI document describes every route the app serves."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from api.app import create_app
from gavel.settings import Settings


async def test_every_route_is_described(client: TestClient, settings: Settings) -> None:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    document = await resp.json()
    app = create_app(settings)
    missing = []
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        path = route.resource.canonical if route.resource else ""
        if route.method.lower() not in document["paths"].get(path, {}):
            missing.append(f"{route.method} {path}")
    assert not missing, f"routes missing from the OpenAPI document: {missing}"
