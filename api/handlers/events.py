"""Ingest: stack events and account scans, accepted as pending evaluations."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from aiohttp import web
from pydantic import AfterValidator, Field, WithJsonSchema

from api.auth import access
from api.domain_errors import domain_errors
from api.errors import BadRequest, NotFound
from api.json import Body, json_response, parse_body
from api.keys import EAGER_PUBLISHER, POOL, SETTINGS, principal
from gavel.entity_names import check_name
from gavel.evaluations import Accepted, accept_event
from gavel.events import Resource, StackEventKind, checked_resources

MAX_RESOURCES = 20_000


# Plain dicts checked by ``Resource``'s rules (as the worker checks events off Kafka):
# building a model per resource cost more than the rest of the request.
Resources = Annotated[list[Any], Field(max_length=MAX_RESOURCES),
                      AfterValidator(checked_resources),
                      WithJsonSchema({"type": "array", "maxItems": MAX_RESOURCES,
                                      "items": Resource.model_json_schema()})]


class StackEventBody(Body):
    kind: StackEventKind
    resources: Resources
    eventId: str | None = Field(default=None, min_length=1, max_length=200)


class ScanBody(Body):
    resources: Resources
    scanId: str | None = Field(default=None, min_length=1, max_length=200)
    chunk: int = Field(default=1, ge=1)
    chunks: int = Field(default=1, ge=1)
    eventId: str | None = Field(default=None, min_length=1, max_length=200)


def _accepted(request: web.Request, accepted: Accepted) -> web.Response:
    request.app[EAGER_PUBLISHER].publish(accepted)
    return json_response({"id": str(accepted.evaluation_id), "status": accepted.status},
                         status=202)


@access("ingest")
@domain_errors
async def post_stack_event(request: web.Request) -> web.Response:
    project = check_name(request.match_info["project"], "project")
    stack = check_name(request.match_info["stack"], "stack")
    body: StackEventBody = await parse_body(request, StackEventBody)
    me = principal(request)
    settings = request.app[SETTINGS]
    accepted = await accept_event(
        request.app[POOL], org_id=me.org_id, org=me.org_name,
        topic=settings.kafka.topic_stack_events, key=f"{me.org_name}/{project}/{stack}",
        entity_type="stack", entity_key=f"{project}/{stack}", kind=body.kind,
        event_id=body.eventId, stack=(project, stack),
        publish_after=request.app[EAGER_PUBLISHER].grace,
        max_message_bytes=settings.kafka.max_message_bytes,
        fields={"project": project, "stack": stack, "kind": body.kind,
                "resources": body.resources})
    return _accepted(request, accepted)


@access("ingest")
@domain_errors
async def post_account_scan(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    body: ScanBody = await parse_body(request, ScanBody)
    if body.chunk > body.chunks:
        raise BadRequest(f"chunk: {body.chunk} is greater than chunks ({body.chunks})")
    me = principal(request)
    settings = request.app[SETTINGS]
    pool = request.app[POOL]
    provider = await pool.fetchval(
        "SELECT provider FROM accounts WHERE org_id = $1 AND name = $2", me.org_id, name)
    if provider is None:
        raise NotFound(f"Account '{name}' not found")
    scan_id = body.scanId or str(uuid.uuid4())
    # a chunk sent again is the same event; another account's scan may share its scanId
    event_id = body.eventId or (
        f"scan:{name}:{body.scanId}:{body.chunk}" if body.scanId else None)
    accepted = await accept_event(
        pool, org_id=me.org_id, org=me.org_name, topic=settings.kafka.topic_account_events,
        key=f"{me.org_name}/{name}", entity_type="account", entity_key=name, kind="scan",
        event_id=event_id, scan=(scan_id, body.chunk, body.chunks),
        publish_after=request.app[EAGER_PUBLISHER].grace,
        max_message_bytes=settings.kafka.max_message_bytes,
        fields={"account": name, "provider": provider, "kind": "scan", "scanId": scan_id,
                "chunk": body.chunk, "chunks": body.chunks, "resources": body.resources})
    return _accepted(request, accepted)
