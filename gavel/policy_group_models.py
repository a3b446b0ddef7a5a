"""Request shapes of the policy group API, with Pulumi's camelCase field names.

Strict types: a number sent as a string, or a string where a boolean belongs, is
refused rather than coerced, and unknown fields are refused everywhere.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gavel.entity_names import Name

EntityType = Literal["stacks", "accounts"]
Mode = Literal["audit", "preventative"]
# A group named "metadata" would be shadowed by GET /policygroups/metadata.
_RESERVED_GROUP_NAMES = frozenset({"metadata"})


def _not_reserved(value: str) -> str:
    if value in _RESERVED_GROUP_NAMES:
        raise ValueError(f"{value!r} is reserved")
    return value


GroupName = Annotated[Name, AfterValidator(_not_reserved)]
ShortText = Annotated[str, Field(max_length=500)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NewPolicyGroup(Strict):
    name: GroupName
    # v1 clients send only a name; such a group holds stacks.
    entityType: EntityType = "stacks"
    mode: Mode | None = None
    agentPoolId: ShortText | None = None

    def effective_mode(self) -> Mode:
        if self.mode is not None:
            return self.mode
        return "audit" if self.entityType == "accounts" else "preventative"


class StackReference(Strict):
    name: Name
    routingProject: Name


class UserInfo(Strict):
    name: ShortText = ""
    githubLogin: ShortText = ""
    avatarUrl: Annotated[str, Field(max_length=2000)] = ""
    email: ShortText | None = None


class InsightsAccountFields(Strict):
    """The InsightsAccount fields a client may send (``scanStatus`` is opaque)."""

    providerVersion: ShortText | None = None
    providerEnvRef: ShortText | None = None
    agentPoolID: ShortText | None = None
    providerConfig: dict[str, Any] | None = None
    scanStatus: dict[str, Any] | None = None


class InsightsAccountReference(InsightsAccountFields):
    """An account named in a group update: found by ``name`` (and ``id`` when given)."""

    name: Name
    id: ShortText | None = None
    ownedBy: UserInfo | None = None
    provider: ShortText | None = None
    scheduledScanEnabled: bool | None = None


class PolicyPackReference(Strict):
    """A pack version to apply or remove: ``version``, else ``versionTag``, finds it."""

    name: Name
    displayName: ShortText = ""
    version: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    versionTag: ShortText = ""
    config: dict[str, Any] | None = None
    environments: list[ShortText] | None = Field(default=None, max_length=100)


class PolicyGroupUpdate(Strict):
    newName: GroupName | None = None
    addStack: StackReference | None = None
    removeStack: StackReference | None = None
    addPolicyPack: PolicyPackReference | None = None
    removePolicyPack: PolicyPackReference | None = None
    addInsightsAccount: InsightsAccountReference | None = None
    removeInsightsAccount: InsightsAccountReference | None = None
    # "" clears the pool; omitted leaves it as it is.
    agentPoolId: ShortText | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, field) is None for field in type(self).model_fields)


BatchUpdate = Annotated[list[PolicyGroupUpdate], Field(min_length=1, max_length=1000)]
