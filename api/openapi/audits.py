"""Audit scans."""

from __future__ import annotations

from typing import Any

from api.openapi.core import ORG, error_responses, json_body, ok
from api.openapi.stacks import PAGED, PAGING

_COUNTS = {"type": "object", "properties": {"advisory": {"type": "integer"},
                                            "mandatory": {"type": "integer"}}}
_TIME = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Audit": {"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid"},
        "status": {"enum": ["queued", "running", "completed", "failed"]},
        "trigger": {"enum": ["manual", "group-change", "schedule"]},
        "policyGroup": {"type": ["string", "null"],
                        "description": "the one group audited, when one was named"},
        "scope": {"enum": ["group", "org", "schedule"]},
        "policyGroups": {"type": "array", "items": {"type": "string"},
                         "description": "the groups audited (fixed when it starts)"},
        "total": {"type": "integer", "description": "member entities to re-evaluate"},
        "evaluated": {"type": "integer"},
        "failed": {"type": "integer",
                   "description": "entities whose evaluation errored or that were deleted"},
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "violations": {**_COUNTS, "description": "violations found under the audited "
                       "groups, by enforcement level"},
        "error": {"type": ["string", "null"]},
        "createdAt": _TIME, "startedAt": _TIME, "finishedAt": _TIME}},
}
_AUDIT = {"$ref": "#/components/schemas/Audit"}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}

PATHS: dict[str, Any] = {
    "/api/orgs/{org}/audits": {
        "post": {
            "summary": "Re-evaluate the last known resources of every member of the org's "
                       "audit-mode groups, or of one group; joins an audit of the same "
                       "scope that has not started yet",
            "parameters": [ORG],
            "requestBody": {**json_body({
                "type": "object", "additionalProperties": False,
                "properties": {"policyGroup": {"type": "string"}}}), "required": False},
            "responses": {**ok({"type": "object", "properties": {
                "id": {"type": "string", "format": "uuid"}}}, 202),
                **error_responses(400, 401, 403, 404)}},
        "get": {
            "summary": "The org's audits, newest first",
            "parameters": [ORG, *PAGING, {"name": "filter[status]", "in": "query", "schema": {
                "enum": ["queued", "running", "completed", "failed"]}}],
            "responses": {**ok({"type": "object", "properties": {
                "audits": {"type": "array", "items": _AUDIT}, **PAGED}}),
                **error_responses(400, 401, 404)}},
    },
    "/api/orgs/{org}/audits/{id}": {"get": {
        "summary": "An audit's status, progress and violation counts",
        "parameters": [ORG, _ID],
        "responses": {**ok(_AUDIT), **error_responses(401, 404)}}},
}
