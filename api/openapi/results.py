"""Querying results: evaluation history, current violations, compliance."""

from __future__ import annotations

from typing import Any

from api.openapi.core import ORG, error_responses, ok
from api.openapi.stacks import PAGED, PAGING

_TEXT = {"type": "string", "maxLength": 1000}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_COUNTS = {"type": "object", "properties": {"advisory": {"type": "integer"},
                                            "mandatory": {"type": "integer"}}}
_ENTITY_TYPE = {"enum": ["stack", "account"]}
_BAD_PARAMETER = ("400 names the parameter: an unknown query parameter, a repeated one, "
                  "or a value outside those listed")


def _filter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": f"filter[{name}]", "in": "query", "schema": schema,
            "description": description}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


_INT = {"type": ["integer", "null"]}
_META = {"type": "object", "properties": {"page": {"type": "object", "properties": {
    "type": {"const": "number_size"}, "number": _INT, "size": _INT, "first_number": _INT,
    "last_number": _INT, "next_number": _INT, "prev_number": _INT, "total": _INT,
    "total_estimated": {"type": "boolean", "description":
                        "past 10,000 matches the total (and so the last page) is the "
                        "database's estimate, except on the violations lists unless "
                        "filtered by entity or urn, and on the evaluation history "
                        "unless filtered by entity, outcome, status, blocking or audit "
                        "(their total is always exact); next links are exact either "
                        "way"}}}}}


def _paged(key: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object",
            "properties": {key: {"type": "array", "items": item}, **PAGED, "meta": _META}}


_TOKEN = {"type": "string", "maxLength": 8000, "pattern": "^[A-Za-z0-9_-]+$"}
CONTINUATION = [
    {"name": "page[after]", "in": "query", "schema": _TOKEN, "description":
     "Opaque token that `links.next` carries beside `page[number]`: the page continues "
     "after the last row of the page before, by its sort key, instead of skipping rows "
     "(flat however deep; rows added or removed before it shift nothing). Valid only "
     "with the list, sort, filters, `page[number]` and `page[size]` of the link that "
     "carried it; otherwise, or when damaged or altered, 400 names `page[after]`. "
     "Without it `page[number]` skips rows, exact for any number."},
    {"name": "page[before]", "in": "query", "schema": _TOKEN, "description":
     "As `page[after]`, carried by `links.prev`: the page that ends before the first "
     "row of the page after it; `prev` is offered exactly while rows precede the page. "
     "`links.last` carries one that means the end of the list: the last page, read "
     "backwards from the end (past 10,000 matches the list's last `page[size]` rows)."},
]


_ENTITY_FILTER = _filter("entity", _TEXT, "`project/stack`, or an account's name")
_ENTITY_TYPE_FILTER = _filter("entityType", _ENTITY_TYPE, "stack or account")
_GROUP_FILTER = _filter("group", _TEXT, "a policy group that applied the pack")
_PACK_FILTER = _filter("pack", _TEXT, "a policy pack's name")

VIOLATION_PARAMETERS = [
    ORG, *PAGING, *CONTINUATION, _ENTITY_FILTER, _ENTITY_TYPE_FILTER, _GROUP_FILTER, _PACK_FILTER,
    _filter("policy", _TEXT, "a policy's name"),
    _filter("level", {"enum": ["advisory", "mandatory"]}, "enforcement level"),
    _filter("urn", _TEXT, "a resource's URN"),
    {"name": "sort", "in": "query", "schema": {"type": "string"},
     "description": "comma-separated keys among level, pack, policy, entity, observedAt; "
                    "`-` before a key sorts it descending (`-level` puts mandatory first; "
                    "`entity` puts accounts before stacks, each by name). "
                    "Default: by id. The id always breaks ties, in the direction of the "
                    "last key, so pages never overlap."},
]
EVALUATION_PARAMETERS = [
    ORG, *PAGING, *CONTINUATION, _ENTITY_FILTER, _ENTITY_TYPE_FILTER,
    _filter("kind", {"enum": ["preview", "update", "refresh", "destroy", "scan", "audit"]},
            "the event's kind"),
    _filter("outcome", {"enum": ["pass", "advisory", "mandatory", "error"]}, "the outcome"),
    _filter("status", {"enum": ["pending", "finished"]}, "pending or finished"),
    _filter("blocking", {"enum": ["true", "false"]},
            "whether it blocks the deployment (pending evaluations match neither)"),
    _filter("since", {"type": "string", "format": "date-time"},
            "received at or after this RFC 3339 time"),
    _filter("until", {"type": "string", "format": "date-time"},
            "received before this RFC 3339 time"),
    _filter("audit", {"type": "string", "format": "uuid"}, "evaluations of one audit"),
]
COMPLIANCE_PARAMETERS = [ORG, *PAGING, _ENTITY_TYPE_FILTER, _GROUP_FILTER, _PACK_FILTER]

SCHEMAS: dict[str, Any] = {
    "EvaluationSummary": {"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid"}, "eventId": {"type": "string"},
        "entity": {"type": "object", "description":
                   "{type: stack, org, project, stack} or {type: account, org, account}"},
        "kind": {"type": "string"}, "status": {"enum": ["pending", "finished"]},
        "outcome": {"enum": ["pass", "advisory", "mandatory", "error", None]},
        "blocking": {"type": ["boolean", "null"]}, "resourceCount": {"type": "integer"},
        "violationCount": {"type": ["integer", "null"],
                           "description": "null while pending"},
        "receivedAt": _TIME, "occurredAt": _TIME, "finishedAt": _TIME,
        "auditId": {"type": ["string", "null"]}, "scanId": {"type": "string"},
        "chunk": {"type": "integer"}, "chunks": {"type": "integer"}}},
    "CurrentViolation": {"type": "object", "properties": {
        "id": {"type": "integer"}, "entity": {"type": "object"},
        "groups": {"type": "array", "items": {"type": "string"}},
        "pack": {"type": "string"}, "packVersion": {"type": "integer"},
        "versionTag": {"type": "string"}, "policy": {"type": "string"},
        "level": {"enum": ["advisory", "mandatory"]}, "urn": {"type": ["string", "null"]},
        "message": {"type": "string"}, "details": {},
        "observedAt": {"type": "string", "format": "date-time"},
        "evaluationId": {"type": "string", "format": "uuid"}}},
    "PolicyViolationV2": {"type": "object", "properties": {
        "id": {"type": "string"}, "projectName": {"type": "string",
                                                  "description": "empty for an account"},
        "stackName": {"type": "string", "description": "the account's name for an account"},
        "accountName": {"type": "string", "description": "only for an account"},
        "entityType": _ENTITY_TYPE, "policyPack": {"type": "string"},
        "policyPackTag": {"type": "string"}, "policyName": {"type": "string"},
        "resourceURN": {"type": "string"}, "message": {"type": "string"},
        "level": {"enum": ["advisory", "mandatory"]},
        "observedAt": {"type": "string", "format": "date-time"}}},
    "ComplianceCounts": {"type": "object", "properties": {
        "entitiesEvaluated": {"type": "integer"},
        "entitiesPassing": {"type": "integer",
                            "description": "ran without error and left no violation"},
        "violations": _COUNTS}},
    "PackCompliance": {"allOf": [_ref("ComplianceCounts"), {"type": "object", "properties": {
        "name": {"type": "string"}, "version": {"type": "integer"},
        "versionTag": {"type": "string"},
        "entitiesErrored": {"type": "integer", "description": "the pack could not be run"},
        "policies": {"type": "array", "items": {"allOf": [
            _ref("ComplianceCounts"),
            {"type": "object", "properties": {"name": {"type": "string"}},
             "description": "entitiesEvaluated: those the pack ran on without error "
                            "with the policy enabled"}]}}}}]},
    "GroupCompliance": {"allOf": [_ref("ComplianceCounts"), {"type": "object", "properties": {
        "name": {"type": "string"}, "entitiesErrored": {"type": "integer"}}}]},
}

PATHS: dict[str, Any] = {
    "/api/orgs/{org}/evaluations": {"get": {
        "summary": "Evaluation history, newest first (by time received, then id)",
        "description": _BAD_PARAMETER, "parameters": EVALUATION_PARAMETERS,
        "responses": {**ok(_paged("evaluations", _ref("EvaluationSummary"))),
                      **error_responses(400, 401, 403, 404)}}},
    "/api/orgs/{org}/violations": {"get": {
        "summary": "Current violations: those of each entity's latest finished evaluation",
        "description": _BAD_PARAMETER, "parameters": VIOLATION_PARAMETERS,
        "responses": {**ok(_paged("violations", _ref("CurrentViolation"))),
                      **error_responses(400, 401, 403, 404)}}},
    "/api/orgs/{org}/policyresults/violationsv2": {"get": {
        "summary": "Current violations in Pulumi Cloud's shape (paged as our own lists)",
        "description": _BAD_PARAMETER, "parameters": VIOLATION_PARAMETERS,
        "responses": {**ok(_paged("policyViolations", _ref("PolicyViolationV2"))),
                      **error_responses(400, 401, 403, 404)}}},
    "/api/orgs/{org}/compliance": {"get": {
        "summary": "Compliance of the current state per pack version, per policy and per "
                   "policy group",
        "description": "From each entity's latest finished evaluation: the packs it ran "
                       "and under which groups (its provenance), and the violations it "
                       "left. Pages over packs (by name, then version); `groups` lists "
                       "every group on each page. A policy that a group's config "
                       "disables is neither evaluated nor passing on the entities it was "
                       "disabled on. " + _BAD_PARAMETER,
        "parameters": COMPLIANCE_PARAMETERS,
        "responses": {**ok({"type": "object", "properties": {
            "packs": {"type": "array", "items": _ref("PackCompliance")},
            "groups": {"type": "array", "items": _ref("GroupCompliance")}, **PAGED,
            "meta": _META}}),
            **error_responses(400, 401, 403, 404)}}},
}
