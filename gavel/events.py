"""Kafka event values (``"schema": 1``) shared by producers and consumers.

``gavel.group-changes`` (key: org) carries the group snapshot after the change and the
org's ``revision``; see ``gavel.group_snapshot`` for the snapshot itself.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
StackEventKind = Literal["preview", "update", "refresh", "destroy"]
GroupChangeKind = Literal["created", "updated", "deleted", "renamed", "snapshot"]


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def envelope(org: str, **fields: Any) -> dict[str, Any]:
    return {"schema": SCHEMA_VERSION, "eventId": str(uuid.uuid4()), "org": org,
            "occurredAt": now_rfc3339(), **fields}


class Resource(BaseModel):
    model_config = ConfigDict(extra="allow")

    urn: str = Field(min_length=1, max_length=2048)
    type: str = Field(min_length=1, max_length=512)
    name: str = Field(default="", max_length=512)
    provider: str = Field(default="", max_length=128)
    properties: dict[str, Any] = Field(default_factory=dict)


def _length_limits(model: type[BaseModel], field: str) -> tuple[str, int, int]:
    metadata = model.model_fields[field].metadata
    low = next((m.min_length for m in metadata if hasattr(m, "min_length")), 0)
    high = next(m.max_length for m in metadata if hasattr(m, "max_length"))
    return field, low, high


# the text rules of ``Resource``, read from the model so the two cannot drift apart
_RESOURCE_TEXT = tuple(_length_limits(Resource, f) for f in ("urn", "type", "name", "provider"))


class ResourceError(ValueError):
    """A resource breaks a rule of ``Resource``; ``path`` is "<index>.<field>"."""

    def __init__(self, index: int, field: str, problem: str) -> None:
        super().__init__(f"item {index}: {f'{field} ' if field else ''}{problem}")
        self.path = f"{index}.{field}" if field else str(index)
        self.problem = problem


def checked_resources(resources: list[Any]) -> list[dict[str, Any]]:
    """The rules of ``Resource``, checked in place on plain dicts.

    Events off Kafka can carry thousands of resources; building a model per resource
    (and dumping it back for OPA) cost more CPU than the evaluation around it.
    """
    for index, resource in enumerate(resources):
        if not isinstance(resource, dict):
            raise ResourceError(index, "", "must be an object")
        for field, low, high in _RESOURCE_TEXT:
            value = resource.get(field, "")
            if not isinstance(value, str) or not low <= len(value) <= high:
                raise ResourceError(index, field,
                                    f"must be a string of {low} to {high} characters")
        properties = resource.setdefault("properties", {})
        if not isinstance(properties, dict):
            raise ResourceError(index, "properties", "must be an object")
        resource.setdefault("name", "")
        resource.setdefault("provider", "")
    return resources


class Envelope(BaseModel):
    """The fields every message Gavel writes to Kafka starts with (see ``envelope``)."""

    model_config = ConfigDict(extra="forbid")

    schema_: Literal[1] = Field(alias="schema")
    eventId: str = Field(min_length=1, max_length=200)
    org: str = Field(min_length=1, max_length=100)
    occurredAt: datetime


class EventBase(Envelope):
    evaluationId: uuid.UUID
    resources: Annotated[list[Any], AfterValidator(checked_resources)]
    # the org's policy group revision when the event was accepted: the worker evaluates
    # it against groups at least that new
    groupRevision: int | None = Field(default=None, ge=0)


class StackEvent(EventBase):
    """Value on ``gavel.stack-events``, key ``org/project/stack``."""

    project: str = Field(min_length=1, max_length=200)
    stack: str = Field(min_length=1, max_length=200)
    kind: StackEventKind


class AccountEvent(EventBase):
    """Value on ``gavel.account-events``, key ``org/account``."""

    account: str = Field(min_length=1, max_length=200)
    provider: str = Field(default="", max_length=128)
    kind: Literal["scan"] = "scan"
    scanId: str = Field(min_length=1, max_length=200)
    chunk: int = Field(default=1, ge=1)
    chunks: int = Field(default=1, ge=1)


class AuditChunk(Envelope):
    """Value on ``gavel.audit-chunks``, key ``auditId/chunk``: entities to re-evaluate."""

    auditId: uuid.UUID
    chunk: int = Field(ge=1)
    entityType: Literal["stack", "account"]
    # "project/stack" keys or account names
    entities: list[str] = Field(min_length=1)
    groupRevision: int = Field(ge=0)
