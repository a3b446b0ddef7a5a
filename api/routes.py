"""Every route of the API, in one place."""

from __future__ import annotations

from aiohttp import web

from api.handlers import health, orgs, policypacks
from api.openapi import openapi_json


def setup_routes(app: web.Application) -> None:
    app.router.add_routes([
        web.get("/healthz", health.healthz),
        web.get("/readyz", health.readyz),
        web.get("/api/openapi.json", openapi_json),
        web.get("/api/orgs/{org}", orgs.get_org),
        web.get("/api/orgs/{org}/tokens", orgs.list_tokens),
        web.post("/api/orgs/{org}/tokens", orgs.create_token),
        web.delete("/api/orgs/{org}/tokens/{token_id}", orgs.revoke_token),
        web.get("/api/orgs/{org}/policypacks", policypacks.list_policy_packs),
        web.post("/api/orgs/{org}/policypacks", policypacks.publish_pack),
        web.get("/api/orgs/{org}/policypacks/{name}/versions/{version}",
                policypacks.get_version),
        web.delete("/api/orgs/{org}/policypacks/{name}/versions/{version}",
                   policypacks.delete_version),
    ])
