"""Kafka event values (``"schema": 1``) shared by producers and consumers.

``gavel.group-changes`` (key: org) carries the group snapshot after the change and the
org's ``revision``; see ``gavel.group_snapshot`` for the snapshot itself.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


class EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_: Literal[1] = Field(alias="schema")
    eventId: str = Field(min_length=1, max_length=200)
    org: str = Field(min_length=1, max_length=100)
    occurredAt: datetime
    evaluationId: uuid.UUID
    resources: list[Resource]
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


class AuditChunk(BaseModel):
    """Value on ``gavel.audit-chunks``, key ``auditId/chunk``: entities to re-evaluate."""

    model_config = ConfigDict(extra="forbid")

    schema_: Literal[1] = Field(alias="schema")
    eventId: str = Field(min_length=1, max_length=200)
    org: str = Field(min_length=1, max_length=100)
    occurredAt: datetime
    auditId: uuid.UUID
    chunk: int = Field(ge=1)
    entityType: Literal["stack", "account"]
    # "project/stack" keys or account names
    entities: list[str] = Field(min_length=1)
    groupRevision: int = Field(ge=0)
