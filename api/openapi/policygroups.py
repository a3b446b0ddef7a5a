"""Policy groups (Pulumi Cloud dialect)."""

from __future__ import annotations

from typing import Any

from api.openapi.core import ORG, error_responses, json_body, ok

NAME = {"type": "string", "pattern": r"^[A-Za-z0-9._-]{1,100}$"}
GROUP = {"name": "group", "in": "path", "required": True, "schema": {"type": "string"}}
ENTITY_TYPE = {"enum": ["stacks", "accounts"]}
MODE = {"enum": ["audit", "preventative"]}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_STACK_REF = {
    "type": "object", "required": ["name", "routingProject"], "additionalProperties": False,
    "properties": {"name": NAME, "routingProject": NAME}}
_PACK_REF = {
    "type": "object", "required": ["name"], "additionalProperties": False,
    "description": "The version is found by `version`, or by `versionTag` when version is "
                   "0 or absent; when both are given they must agree. Adding a pack that is "
                   "already applied replaces its version and config.",
    "properties": {
        "name": NAME, "displayName": {"type": "string"},
        "version": {"type": "integer", "minimum": 0}, "versionTag": {"type": "string"},
        "config": {"type": "object", "description": (
            "Per policy (or `all`): an enforcement level, or an object with "
            "`enforcementLevel` and the policy's configuration, validated against its "
            "configSchema.")},
        "environments": {"type": "array", "items": {"type": "string"}}}}
_USER = {"type": "object", "additionalProperties": False,
         "properties": {"name": {"type": "string"}, "githubLogin": {"type": "string"},
                        "avatarUrl": {"type": "string"}, "email": {"type": "string"}}}
_ACCOUNT_OPTIONAL = {
    "providerVersion": {"type": "string"}, "providerEnvRef": {"type": "string"},
    "agentPoolID": {"type": "string"}, "providerConfig": {"type": "object"},
    "scanStatus": {"type": "object"}}
_ACCOUNT_REF = {
    "type": "object", "required": ["name"], "additionalProperties": False,
    "description": "An InsightsAccount; found by name (and id when given).",
    "properties": {"id": {"type": "string"}, "name": NAME, "ownedBy": ref("UserInfo"),
                   "provider": {"type": "string"}, "scheduledScanEnabled": {"type": "boolean"},
                   **_ACCOUNT_OPTIONAL}}

SCHEMAS: dict[str, Any] = {
    "UserInfo": _USER,
    "AppPulumiStackReference": _STACK_REF,
    "AppPolicyPackMetadata": _PACK_REF,
    "InsightsAccountReference": _ACCOUNT_REF,
    "NewPolicyGroup": {
        "type": "object", "required": ["name"], "additionalProperties": False,
        "properties": {
            "name": NAME, "entityType": {**ENTITY_TYPE, "default": "stacks"},
            "mode": {**MODE, "description": "default: preventative for stacks, "
                                            "audit for accounts"},
            "agentPoolId": {"type": "string"}}},
    "UpdatePolicyGroupRequest": {
        "type": "object", "additionalProperties": False, "minProperties": 1,
        "description": "Every field given is applied, all or none, as one change.",
        "properties": {
            "newName": NAME,
            "addStack": ref("AppPulumiStackReference"),
            "removeStack": ref("AppPulumiStackReference"),
            "addPolicyPack": ref("AppPolicyPackMetadata"),
            "removePolicyPack": ref("AppPolicyPackMetadata"),
            "addInsightsAccount": ref("InsightsAccountReference"),
            "removeInsightsAccount": ref("InsightsAccountReference"),
            "agentPoolId": {"type": "string",
                            "description": "empty string clears; omitted leaves unchanged"}}},
    "AppPolicyGroupSummary": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "isOrgDefault": {"type": "boolean"},
                       "numStacks": {"type": "integer"}, "numAccounts": {"type": "integer"},
                       "entityType": ENTITY_TYPE, "mode": MODE,
                       "numEnabledPolicyPacks": {"type": "integer"}}},
    "AppliedPolicyPack": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "displayName": {"type": "string"},
                       "version": {"type": "integer"}, "versionTag": {"type": "string"},
                       "config": {"type": "object"},
                       "environments": {"type": "array", "items": {"type": "string"}}}},
    "PolicyGroup": {
        "type": "object",
        "description": "Default groups list their implicit members (stacks or accounts in "
                       "no other group of the entity type).",
        "properties": {
            "name": {"type": "string"}, "isOrgDefault": {"type": "boolean"},
            "entityType": ENTITY_TYPE, "mode": MODE,
            "stacks": {"type": "array", "items": ref("AppPulumiStackReference")},
            "accounts": {"type": "array", "items": {"type": "string"}},
            "appliedPolicyPacks": {"type": "array", "items": ref("AppliedPolicyPack")},
            "agentPoolId": {"type": "string"}}},
    "PolicyGroupMetadata": {
        "type": "object",
        "description": "A stack or account is protected when it is a member of a group "
                       "that applies at least one policy pack.",
        "properties": {field: {"type": "integer"} for field in (
            "ProtectedStacks", "ProtectedStackResources", "PreventativeStacks",
            "PreventativeStackResources", "AuditStacks", "AuditStackResources",
            "TotalStacks", "TotalStackResources", "ProtectedAccounts",
            "ProtectedAccountResources", "TotalAccounts", "TotalAccountResources")}},
}

_BASE = "/api/orgs/{org}/policygroups"
# as Pulumi's API answers: 409 when a created group's name is taken; an update that
# would rename a group to a taken name is a 400 like any other refused update
_CREATE_ERRORS = error_responses(400, 401, 403, 404, 409)
_CHANGE_ERRORS = error_responses(400, 401, 403, 404)

PATHS: dict[str, Any] = {
    _BASE: {
        "get": {"summary": "List policy groups", "parameters": [ORG],
                "responses": {**ok({"type": "object", "properties": {"policyGroups": {
                    "type": "array", "items": ref("AppPolicyGroupSummary")}}}),
                    **error_responses(401, 404)}},
        "post": {"summary": "Create a policy group", "parameters": [ORG],
                 "requestBody": json_body(ref("NewPolicyGroup")),
                 "responses": {**ok(code=204), **_CREATE_ERRORS}}},
    f"{_BASE}/metadata": {"get": {
        "summary": "Policy protection counters", "parameters": [ORG],
        "responses": {**ok(ref("PolicyGroupMetadata")), **error_responses(401, 404)}}},
    f"{_BASE}/{{group}}": {
        "get": {"summary": "Get a policy group", "parameters": [ORG, GROUP],
                "responses": {**ok(ref("PolicyGroup")), **error_responses(401, 404)}},
        "patch": {"summary": "Update a policy group (all given fields, or none)",
                  "parameters": [ORG, GROUP],
                  "requestBody": json_body(ref("UpdatePolicyGroupRequest")),
                  "responses": {**ok(code=204), **_CHANGE_ERRORS}},
        "delete": {"summary": "Delete a policy group (not a default one)",
                   "parameters": [ORG, GROUP],
                   "responses": {**ok(code=204), **error_responses(400, 401, 403, 404)}}},
    f"{_BASE}/{{group}}/batch": {"patch": {
        "summary": "Apply several updates in order, atomically", "parameters": [ORG, GROUP],
        "requestBody": json_body({"type": "array", "minItems": 1, "maxItems": 1000,
                                  "items": ref("UpdatePolicyGroupRequest")}),
        "responses": {**ok(code=204), **_CHANGE_ERRORS}}},
}
