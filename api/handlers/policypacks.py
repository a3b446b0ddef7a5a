"""Policy packs: publish, list, get and delete versions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from aiohttp import web
from pydantic import Field, StrictStr

from api.errors import ApiError, BadRequest, Conflict, NotFound
from api.json import Body, json_response, parse_body
from api.keys import OPA, OPA_CHECK, POOL, principal
from gavel.pack_check import ModuleRejected, OpaUnavailable
from gavel.policy_packs import (
    PackDraft,
    PackInvalid,
    PackNotFound,
    Policy,
    VersionInUse,
    VersionTagExists,
    delete_and_unload,
    get_pack_version,
    list_packs,
    publish,
)


class PolicyBody(Body):
    name: StrictStr
    description: StrictStr = ""
    enforcementLevel: Literal["advisory", "mandatory", "disabled"] = "advisory"
    configSchema: dict[str, Any] | None = None
    rego: StrictStr


class PublishBody(Body):
    name: StrictStr
    displayName: StrictStr | None = None
    versionTag: StrictStr = Field(min_length=1, max_length=200)
    policies: list[PolicyBody] = Field(min_length=1)

    def draft(self) -> PackDraft:
        return PackDraft(
            name=self.name, display_name=self.displayName or self.name,
            version_tag=self.versionTag,
            policies=tuple(Policy(name=p.name, description=p.description,
                                  enforcement_level=p.enforcementLevel,
                                  config_schema=p.configSchema, rego=p.rego)
                           for p in self.policies))


@contextmanager
def pack_errors() -> Iterator[None]:
    """Domain errors of gavel.policy_packs as API errors."""
    try:
        yield
    except (PackInvalid, ModuleRejected) as exc:
        raise BadRequest(str(exc)) from None
    except (VersionTagExists, VersionInUse) as exc:
        raise Conflict(str(exc)) from None
    except PackNotFound as exc:
        raise NotFound(str(exc)) from None
    except OpaUnavailable as exc:
        raise ApiError(str(exc), status=503) from None


def version_param(request: web.Request) -> int:
    raw = request.match_info["version"]
    if not raw.isdigit() or int(raw) < 1:
        raise BadRequest(f"version: must be a positive integer (got {raw!r})")
    return int(raw)


async def publish_pack(request: web.Request) -> web.Response:
    body: PublishBody = await parse_body(request, PublishBody)
    draft = body.draft()
    with pack_errors():
        version = await publish(request.app[POOL], request.app[OPA_CHECK],
                                principal(request).org_id, draft)
    return json_response({"name": draft.name, "version": version,
                          "versionTag": draft.version_tag}, status=201)


async def list_policy_packs(request: web.Request) -> web.Response:
    packs = await list_packs(request.app[POOL], principal(request).org_id)
    return json_response({"policyPacks": [p.to_json() for p in packs]})


async def get_version(request: web.Request) -> web.Response:
    name, version = request.match_info["name"], version_param(request)
    found = await get_pack_version(request.app[POOL], principal(request).org_id, name,
                                   version=version)
    if found is None:
        raise NotFound(f"Policy pack '{name}' version {version} not found")
    return json_response(found.to_json())


async def delete_version(request: web.Request) -> web.Response:
    name, version = request.match_info["name"], version_param(request)
    with pack_errors():
        await delete_and_unload(request.app[POOL], request.app[OPA],
                                principal(request).org_id, name, version)
    return web.Response(status=204)
