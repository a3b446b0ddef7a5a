"""Typed application state keys."""

from __future__ import annotations

import asyncpg
from aiohttp import web
from opa_client import AsyncOpaClient

from gavel.settings import Settings
from gavel.tokens import Principal, TokenCache

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
OPA = web.AppKey("opa", AsyncOpaClient)
TOKEN_CACHE = web.AppKey("token_cache", TokenCache)
PRINCIPAL = web.RequestKey("principal", Principal)


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]
