"""Health, organizations and tokens."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}


def error_responses(*codes: int) -> dict[str, Any]:
    return {str(code): {"description": "error",
                        "content": {"application/json": {"schema": ERROR}}} for code in codes}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def ok(schema: dict[str, Any] | None = None, code: int = 200) -> dict[str, Any]:
    if schema is None:
        return {str(code): {"description": "success"}}
    return {str(code): {"description": "success",
                        "content": {"application/json": {"schema": schema}}}}


ORG = {"name": "org", "in": "path", "required": True, "schema": {"type": "string"}}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["code", "message"],
              "properties": {"code": {"type": "integer"}, "message": {"type": "string"}}},
}

PATHS: dict[str, Any] = {
    "/healthz": {"get": {"summary": "Process is up", "security": [], "responses": ok()}},
    "/readyz": {"get": {"summary": "Postgres, Kafka and OPA reachable", "security": [],
                        "responses": {**ok(), **error_responses(503)}}},
    "/api/openapi.json": {"get": {"summary": "This document", "security": [],
                                  "responses": ok()}},
    "/api/orgs/{org}": {"get": {
        "summary": "The organization of the token", "parameters": [ORG],
        "responses": {**ok({"type": "object", "properties": {"name": {"type": "string"}}}),
                      **error_responses(401, 404)}}},
    "/api/orgs/{org}/tokens": {
        "get": {"summary": "List tokens (values are never shown again)", "parameters": [ORG],
                "responses": {**ok(), **error_responses(401, 404)}},
        "post": {"summary": "Issue a token (admin)", "parameters": [ORG],
                 "requestBody": json_body({
                     "type": "object", "required": ["role"], "additionalProperties": False,
                     "properties": {"role": {"enum": ["admin", "member", "ingest"]},
                                    "description": {"type": "string"}}}),
                 "responses": {**ok(code=201), **error_responses(400, 401, 403, 404)}}},
    "/api/orgs/{org}/tokens/{token_id}": {"delete": {
        "summary": "Revoke a token (admin)",
        "description": "400 for the organization's last admin token: create another "
                       "admin token first",
        "parameters": [ORG, {"name": "token_id", "in": "path", "required": True,
                             "schema": {"type": "string", "format": "uuid"}}],
        "responses": {**ok(code=204), **error_responses(400, 401, 403, 404)}}},
}
