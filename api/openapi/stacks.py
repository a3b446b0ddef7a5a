"""Stacks and Insights-style accounts."""

from __future__ import annotations

from typing import Any

from api.openapi.core import ORG, error_responses, json_body, ok
from api.openapi.policygroups import NAME, ref

PROJECT = {"name": "project", "in": "path", "required": True, "schema": NAME}
STACK = {"name": "stack", "in": "path", "required": True, "schema": NAME}
ACCOUNT = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
PAGING = [
    {"name": "page[number]", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                       "default": 0}},
    {"name": "page[size]", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                     "maximum": 1000, "default": 100}},
]
PAGED = {"links": {"type": "object"}, "meta": {"type": "object", "properties": {
    "page": {"type": "object"}}}}
_STACK_PROPERTIES = {"routingProject": {"type": "string"}, "name": {"type": "string"},
                     "resourceCount": {"type": "integer"},
                     "createdAt": {"type": "string", "format": "date-time"},
                     "updatedAt": {"type": "string", "format": "date-time"}}
_ACCOUNT_OPTIONAL = {
    "providerVersion": {"type": "string"}, "providerEnvRef": {"type": "string"},
    "agentPoolID": {"type": "string"}, "providerConfig": {"type": "object"},
    "scanStatus": {"type": "object"}}

SCHEMAS: dict[str, Any] = {
    "Stack": {"type": "object", "properties": _STACK_PROPERTIES},
    "StackPolicyGroup": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "isOrgDefault": {"type": "boolean"},
                       "entityType": {"type": "string"}, "mode": {"type": "string"},
                       "agentPoolId": {"type": "string"},
                       "implicit": {"type": "boolean", "description":
                                    "member of the default group by being in no other"},
                       "appliedPolicyPacks": {"type": "array",
                                              "items": ref("AppliedPolicyPack")}}},
    "StackDetail": {"type": "object", "properties": {
        **_STACK_PROPERTIES, "orgName": {"type": "string"},
        "resources": {"type": "array", "items": {"type": "object"}},
        "policyGroups": {"type": "array", "items": ref("StackPolicyGroup")},
        "lastEvaluation": {"type": ["object", "null"]}}},
    "InsightsAccount": {
        "type": "object",
        "required": ["id", "name", "ownedBy", "provider", "scheduledScanEnabled"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                       "ownedBy": ref("UserInfo"), "provider": {"type": "string"},
                       "scheduledScanEnabled": {"type": "boolean"}, **_ACCOUNT_OPTIONAL}},
    "NewInsightsAccount": {
        "type": "object", "required": ["name", "provider"], "additionalProperties": False,
        "properties": {"id": {"type": "string", "description": "generated when absent"},
                       "name": NAME, "ownedBy": ref("UserInfo"),
                       "provider": {"type": "string"},
                       "scheduledScanEnabled": {"type": "boolean", "default": False},
                       **_ACCOUNT_OPTIONAL}},
}

_STACK_PATH = "/api/stacks/{org}/{project}/{stack}"

PATHS: dict[str, Any] = {
    _STACK_PATH: {
        "put": {"summary": "Register a stack; `resources` replaces its last known resources",
                "parameters": [ORG, PROJECT, STACK],
                "requestBody": {**json_body({
                    "type": "object", "additionalProperties": False,
                    "properties": {"resources": {"type": "array",
                                                 "items": {"type": "object"}}}}),
                    "required": False},
                "responses": {**ok(ref("Stack")), **ok(ref("Stack"), code=201),
                              **error_responses(400, 401, 403, 404)}},
        "get": {"summary": "A stack, the groups that apply to it, its last evaluation",
                "parameters": [ORG, PROJECT, STACK],
                "responses": {**ok(ref("StackDetail")), **error_responses(400, 401, 404)}}},
    f"{_STACK_PATH}/policygroups": {"get": {
        "summary": "The policy groups that apply to a stack",
        "parameters": [ORG, PROJECT, STACK],
        "responses": {**ok({"type": "object", "properties": {"policyGroups": {
            "type": "array", "items": ref("StackPolicyGroup")}}}),
            **error_responses(400, 401, 404)}}},
    "/api/orgs/{org}/stacks": {"get": {
        "summary": "The org's stacks, paged", "parameters": [ORG, *PAGING],
        "responses": {**ok({"type": "object", "properties": {
            "stacks": {"type": "array", "items": ref("Stack")}, **PAGED}}),
            **error_responses(400, 401, 404)}}},
    "/api/orgs/{org}/accounts": {
        "post": {"summary": "Register an account", "parameters": [ORG],
                 "requestBody": json_body(ref("NewInsightsAccount")),
                 "responses": {**ok(ref("InsightsAccount"), code=201),
                               **error_responses(400, 401, 403, 404, 409)}},
        "get": {"summary": "The org's accounts, paged", "parameters": [ORG, *PAGING],
                "responses": {**ok({"type": "object", "properties": {
                    "accounts": {"type": "array", "items": ref("InsightsAccount")},
                    **PAGED}}), **error_responses(400, 401, 404)}}},
    "/api/orgs/{org}/accounts/{name}": {
        "get": {"summary": "An account", "parameters": [ORG, ACCOUNT],
                "responses": {**ok(ref("InsightsAccount")), **error_responses(401, 404)}},
        "delete": {"summary": "Delete an account (it leaves its groups)",
                   "parameters": [ORG, ACCOUNT],
                   "responses": {**ok(code=204), **error_responses(401, 403, 404)}}},
}
