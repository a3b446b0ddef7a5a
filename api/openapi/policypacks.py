"""Policy packs and their versions."""

from __future__ import annotations

from typing import Any

from api.openapi.core import ORG, error_responses, json_body, ok

NAME = {"type": "string", "pattern": r"^[A-Za-z0-9._-]{1,100}$"}
LEVEL = {"enum": ["advisory", "mandatory", "disabled"]}
PACK_NAME = {"name": "name", "in": "path", "required": True, "schema": NAME}
VERSION = {"name": "version", "in": "path", "required": True,
           "schema": {"type": "integer", "minimum": 1}}

SCHEMAS: dict[str, Any] = {
    "Policy": {
        "type": "object", "required": ["name", "rego"], "additionalProperties": False,
        "properties": {
            "name": {**NAME, "description": "unique within the pack; 'all' is reserved"},
            "description": {"type": "string", "default": ""},
            "enforcementLevel": {**LEVEL, "default": "advisory"},
            "configSchema": {"type": ["object", "null"],
                             "description": "JSON Schema of the policy's config"},
            "rego": {"type": "string", "description": (
                "One Rego module (v1 syntax). Any package: Gavel places it under a "
                "namespace private to the pack version. It must define the set "
                "`violations` of objects {message, urn?, details?}, read only input and "
                "its own rules, and compile in OPA; errors answer 400 with OPA's "
                "row:col and message.")},
        }},
    "PublishPolicyPack": {
        "type": "object", "required": ["name", "versionTag", "policies"],
        "additionalProperties": False,
        "properties": {
            "name": NAME,
            "displayName": {"type": "string", "description": "defaults to the name"},
            "versionTag": {"type": "string", "minLength": 1, "maxLength": 200},
            "policies": {"type": "array", "minItems": 1,
                         "items": {"$ref": "#/components/schemas/Policy"}},
        }},
    "PublishedPolicyPack": {
        "type": "object", "required": ["name", "version", "versionTag"],
        "properties": {"name": {"type": "string"}, "version": {"type": "integer"},
                       "versionTag": {"type": "string"}}},
    "PolicyPackList": {
        "type": "object", "required": ["policyPacks"],
        "properties": {"policyPacks": {"type": "array", "items": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "displayName": {"type": "string"},
                           "versions": {"type": "array", "items": {"type": "integer"}},
                           "versionTags": {"type": "array",
                                           "items": {"type": "string"}}}}}}},
    "PolicyPackVersion": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "displayName": {"type": "string"},
                       "version": {"type": "integer"}, "versionTag": {"type": "string"},
                       "createdAt": {"type": "string", "format": "date-time"},
                       "policies": {"type": "array",
                                    "items": {"$ref": "#/components/schemas/Policy"}}}},
}

PATHS: dict[str, Any] = {
    "/api/orgs/{org}/policypacks": {
        "get": {"summary": "List policy packs with their versions and versionTags",
                "parameters": [ORG],
                "responses": {**ok({"$ref": "#/components/schemas/PolicyPackList"}),
                              **error_responses(401, 404)}},
        "post": {"summary": "Publish a new version of a policy pack (admin)",
                 "description": "Versions are numbered 1, 2, 3… per pack and are "
                                "immutable. Every module is compiled by OPA first; "
                                "nothing is stored unless all pass.",
                 "parameters": [ORG],
                 "requestBody": json_body({"$ref": "#/components/schemas/PublishPolicyPack"}),
                 "responses": {
                     **ok({"$ref": "#/components/schemas/PublishedPolicyPack"}, code=201),
                     **error_responses(400, 401, 403, 404, 409, 503)}}},
    "/api/orgs/{org}/policypacks/{name}/versions/{version}": {
        "get": {"summary": "One version of a policy pack, with its policies as published",
                "parameters": [ORG, PACK_NAME, VERSION],
                "responses": {**ok({"$ref": "#/components/schemas/PolicyPackVersion"}),
                              **error_responses(400, 401, 404)}},
        "delete": {"summary": "Delete a version (admin); the pack goes with its last version",
                   "description": "409 while a policy group applies the version.",
                   "parameters": [ORG, PACK_NAME, VERSION],
                   "responses": {**ok(code=204), **error_responses(400, 401, 403, 404, 409)}}},
}
