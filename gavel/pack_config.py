"""Checking the config of a pack version applied to a group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gavel.enforcement import (
    ALL,
    ConfigError,
    normalize_config,
    policy_values,
    validate_policy_values,
)


def validated_config(config: Mapping[str, Any] | None,
                     policies: Sequence[Mapping[str, Any]]) -> dict[str, dict]:
    """Normalize ``config`` and validate each policy's values against its configSchema.

    Raises ``ConfigError`` naming the policy and field. ``all`` may only carry an
    enforcement level: a value for every policy would bypass each policy's schema.
    """
    schemas = {str(p["name"]): p.get("configSchema") for p in policies}
    normalized = normalize_config(config, schemas)
    shared = policy_values(normalized, ALL)
    if shared:
        raise ConfigError(f"config.{ALL}: only enforcementLevel applies to all policies "
                          f"(got {', '.join(sorted(shared))})")
    for policy in normalized:
        if policy != ALL:
            validate_policy_values(policy, policy_values(normalized, policy), schemas[policy])
    return normalized
