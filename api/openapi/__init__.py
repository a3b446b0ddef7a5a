"""The OpenAPI document at ``/api/openapi.json``, assembled from one module per resource.

Each module exposes ``PATHS`` (OpenAPI path items) and optionally ``SCHEMAS``
(components). A test checks that every route the app serves is described here.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.json import json_response
from api.openapi import (
    audits,
    core,
    evaluations,
    operations,
    policygroups,
    policypacks,
    results,
    stacks,
)

_MODULES = [core, operations, evaluations, policypacks, policygroups, stacks, audits, results]


def build_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for module in _MODULES:
        for path, item in module.PATHS.items():
            paths.setdefault(path, {}).update(item)
        schemas.update(getattr(module, "SCHEMAS", {}))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Gavel", "version": "1"},
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header",
                                          "name": "Authorization",
                                          "description": "`token <value>`"}},
            "schemas": schemas,
        },
        "security": [{"token": []}],
        "paths": paths,
    }


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(build_document())
