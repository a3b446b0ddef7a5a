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


SCHEMAS: dict[str, Any] = {
    "Evaluation": {"type": "object", "properties": {
        "id": {"type": "string"}, "eventId": {"type": "string"},
        "entity": {"type": "object"}, "kind": {"type": "string"},
        "status": {"enum": ["pending", "finished"]},
        "outcome": {"enum": ["pass", "advisory", "mandatory", "error", None]},
        "blocking": {"type": ["boolean", "null"]},
        "packs": {"type": "array", "description": "each pack run: its provenance",
                  "items": {"type": "object", "properties": {
                      "name": {"type": "string"}, "version": {"type": "integer"},
                      "versionTag": {"type": "string"},
                      "groups": {"type": "array", "items": {"type": "object"}},
                      "opaVersion": {"type": "string"},
                      "decisionId": {"type": ["string", "null"]},
                      "durationMs": {"type": "number"},
                      "batchSize": {"type": "integer",
                                    "description": "events evaluated by the same query"},
                      "status": {"enum": ["ok", "error"]},
                      "error": {"type": ["string", "null"]},
                      "violations": {"type": "integer"},
                      "disabledPolicies": {
                          "type": "array", "items": {"type": "string"},
                          "description": "policies the config disabled: not run"}}}},
        "violations": {
            "type": "array",
            "description": "mandatory first, then by pack, policy and URN (none first)",
            "items": {"type": "object", "properties": {
                "groups": {"type": "array", "items": {"type": "string"}},
                "pack": {"type": "string"}, "packVersion": {"type": "integer"},
                "versionTag": {"type": "string"}, "policy": {"type": "string"},
                "level": {"enum": ["advisory", "mandatory"]},
                "urn": {"type": ["string", "null"]},
                "message": {"type": "string"}, "details": {}}}}}},
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
                                       "description": "makes the call idempotent"}}}),
        "responses": {**ok(ACCEPTED, 202), **error_responses(400, 401, 403, 404)}}},
    "/api/orgs/{org}/accounts/{name}/scans": {"post": {
        "summary": "Send (a chunk of) an account scan; evaluated asynchronously",
        "parameters": [ORG, _path("name")],
        "requestBody": json_body({
            "type": "object", "required": ["resources"], "additionalProperties": False,
            "properties": {"resources": {"type": "array", "items": RESOURCE},
                           "scanId": {"type": "string"}, "eventId": {"type": "string"},
                           "chunk": {"type": "integer", "minimum": 1},
                           "chunks": {"type": "integer", "minimum": 1}}}),
        "responses": {**ok(ACCEPTED, 202), **error_responses(400, 401, 403, 404)}}},
    "/api/orgs/{org}/evaluations/{id}": {"get": {
        "summary": "An evaluation; ?wait=SECONDS long-polls until it is finished",
        "parameters": [ORG, _path("id"),
                       {"name": "wait", "in": "query", "schema": {"type": "number",
                                                                 "maximum": 120}}],
        "responses": {**ok({"$ref": "#/components/schemas/Evaluation"}),
                      **error_responses(400, 401, 404)}}},
}
