"""Typed application state keys."""

from __future__ import annotations

import asyncpg
from aiohttp import web
from opa_client import AsyncOpaClient

from api.eager_publisher import EagerPublisher
from gavel.settings import Settings
from gavel.tokens import Principal, TokenCache

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
OPA = web.AppKey("opa", AsyncOpaClient)
TOKEN_CACHE = web.AppKey("token_cache", TokenCache)
EAGER_PUBLISHER = web.AppKey("eager_publisher", EagerPublisher)
# compile-checks published modules: the OPA of GAVEL_OPA_CHECK_URL, else the same as OPA
OPA_CHECK = web.AppKey("opa_check", AsyncOpaClient)
PRINCIPAL = web.RequestKey("principal", Principal)


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]
