"""Ingest and evaluations."""

from __future__ import annotations

from typing import Any

from api.openapi.core import ORG, error_responses, json_body, ok

RESOURCE = {"type": "object", "required": ["urn", "type"],
            "properties": {"urn": {"type": "string"}, "type": {"type": "string"},
                           "name": {"type": "string"}, "provider": {"type": "string"},
                           "properties": {"type": "object"}}}
ACCEPTED = {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"},
                                             "status": {"enum": ["pending", "finished"]}}}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_PACK_RUN = {"type": "object", "properties": {
    "name": {"type": "string"}, "version": {"type": "integer"},
    "versionTag": {"type": "string"},
    "groups": {"type": "array", "description": "the groups that applied the pack",
               "items": {"type": "object", "properties": {
                   "name": {"type": "string"}, "mode": {"enum": ["preventative", "audit"]}}}},
    "opaVersion": {"type": "string"},
    "decisionId": {"type": ["string", "null"]},
    "durationMs": {"type": "number"},
    "batchSize": {"type": "integer", "description": "events evaluated by the same query"},
    "status": {"enum": ["ok", "error"]},
    "error": {"type": ["string", "null"]},
    "violations": {"type": "integer"},
    "disabledPolicies": {"type": "array", "items": {"type": "string"},
                         "description": "policies the config disabled: not run"}}}
_VIOLATION = {"type": "object", "properties": {
    "groups": {"type": "array", "items": {"type": "string"}},
    "pack": {"type": "string"}, "packVersion": {"type": "integer"},
    "versionTag": {"type": "string"}, "policy": {"type": "string"},
    "level": {"enum": ["advisory", "mandatory"]},
    "urn": {"type": ["string", "null"]},
    "message": {"type": "string"}, "details": {}}}

_WHILE_PENDING = "null while pending"
_SCAN_ONLY = "only for a chunk of an account scan"
_ALWAYS = ["id", "eventId", "entity", "kind", "status", "outcome", "blocking",
           "resourceCount", "receivedAt", "occurredAt", "finishedAt", "opaVersion", "packs",
           "violations"]

SCHEMAS: dict[str, Any] = {
    "Evaluation": {"type": "object", "required": _ALWAYS, "properties": {
        "id": {"type": "string", "format": "uuid"}, "eventId": {"type": "string"},
        "entity": {"type": "object", "required": ["type", "org"], "properties": {
            "type": {"enum": ["stack", "account"]}, "org": {"type": "string"},
            "project": {"type": "string"}, "stack": {"type": "string"},
            "account": {"type": "string"}},
            "description": "{type: stack, org, project, stack} or "
                           "{type: account, org, account}"},
        "kind": {"enum": ["preview", "update", "refresh", "destroy", "scan", "audit"]},
        "status": {"enum": ["pending", "finished"]},
        "outcome": {"enum": ["pass", "advisory", "mandatory", "error", None],
                    "description": _WHILE_PENDING},
        "blocking": {"type": ["boolean", "null"], "description": _WHILE_PENDING},
        "resourceCount": {"type": "integer"},
        "receivedAt": {"type": "string", "format": "date-time"},
        "occurredAt": {"type": "string", "format": "date-time"},
        "finishedAt": {"type": ["string", "null"], "format": "date-time",
                       "description": _WHILE_PENDING},
        "opaVersion": {"type": ["string", "null"], "description": _WHILE_PENDING},
        "packs": {"type": "array", "items": _PACK_RUN,
                  "description": "each pack run: its provenance (none while pending)"},
        "violations": {"type": "array", "items": _VIOLATION,
                       "description": "mandatory first, then by pack, policy and URN "
                                      "(none first); none while pending"},
        "scanId": {"type": "string", "description": _SCAN_ONLY},
        "chunk": {"type": "integer", "description": _SCAN_ONLY},
        "chunks": {"type": "integer", "description": _SCAN_ONLY},
        "auditId": {"type": "string", "format": "uuid",
                    "description": "only for an evaluation of an audit"}}},
}

PATHS: dict[str, Any] = {
    "/api/stacks/{org}/{project}/{stack}/events": {"post": {
        "summary": "Send a stack event (ingest or admin token); evaluated asynchronously",
        "parameters": [ORG, _path("project"), _path("stack")],
        "requestBody": json_body({
            "type": "object", "required": ["kind", "resources"], "additionalProperties": False,
            "properties": {"kind": {"enum": ["preview", "update", "refresh", "destroy"]},
                           "resources": {"type": "array", "items": RESOURCE},
                           "eventId": {"type": "string",
                                       "description": "makes the call idempotent; 409 if "
                                                      "sent before for another stack or "
                                                      "kind"}}}),
        "responses": {**ok(ACCEPTED, 202), **error_responses(400, 401, 403, 404, 409)}}},
    "/api/orgs/{org}/accounts/{name}/scans": {"post": {
        "summary": "Send (a chunk of) an account scan; evaluated asynchronously",
        "parameters": [ORG, _path("name")],
        "requestBody": json_body({
            "type": "object", "required": ["resources"], "additionalProperties": False,
            "properties": {"resources": {"type": "array", "items": RESOURCE},
                           "scanId": {"type": "string"}, "eventId": {"type": "string"},
                           "chunk": {"type": "integer", "minimum": 1},
                           "chunks": {"type": "integer", "minimum": 1}}}),
        "responses": {**ok(ACCEPTED, 202), **error_responses(400, 401, 403, 404, 409)}}},
    "/api/orgs/{org}/evaluations/{id}": {"get": {
        "summary": "An evaluation; ?wait=SECONDS long-polls until it is finished",
        "parameters": [ORG, _path("id"),
                       {"name": "wait", "in": "query",
                        "description": "seconds to wait for the evaluation to finish; "
                                       "answers it as it is then (pending, or 404 if "
                                       "its event has not been seen)",
                        "schema": {"type": "number", "minimum": 0, "maximum": 120,
                                   "default": 0}}],
        "responses": {**ok({"$ref": "#/components/schemas/Evaluation"}),
                      **error_responses(400, 401, 404)}}},
}
