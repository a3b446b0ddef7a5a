"""Enforcement levels and policy pack config: pure logic shared by API and worker.

Effective level of a policy in an applied pack: ``config[policy].enforcementLevel``,
else ``config["all"].enforcementLevel``, else the policy's published default, else
``advisory``. The shorthand ``{"all": "disabled", "p": "mandatory"}`` means the same
as the object form. Other config values are the policy's own configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

EnforcementLevel = Literal["advisory", "mandatory", "disabled"]
LEVELS: tuple[str, ...] = ("advisory", "mandatory", "disabled")
ALL = "all"
LEVEL_KEY = "enforcementLevel"


class ConfigError(ValueError):
    """A pack config is wrong; the message names the policy and field."""


def normalize_config(config: Mapping[str, Any] | None,
                     policy_names: Iterable[str]) -> dict[str, dict]:
    """Expand the shorthand and check levels and policy names.

    Returns ``{policy-or-"all": {"enforcementLevel"?: level, ...values}}``.
    """
    known = set(policy_names)
    normalized: dict[str, dict] = {}
    for key, value in (config or {}).items():
        where = f"config.{key}"
        if key != ALL and key not in known:
            raise ConfigError(f"{where}: the pack has no policy named {key!r}")
        if isinstance(value, str):
            value = {LEVEL_KEY: value}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: must be an enforcement level or an object")
        entry = dict(value)
        if LEVEL_KEY in entry and entry[LEVEL_KEY] not in LEVELS:
            raise ConfigError(f"{where}.{LEVEL_KEY}: must be one of advisory, mandatory, "
                              f"disabled (got {entry[LEVEL_KEY]!r})")
        normalized[key] = entry
    return normalized


def _entry(config: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = config.get(key)
    if isinstance(value, str):
        return {LEVEL_KEY: value}
    return value if isinstance(value, Mapping) else {}


def effective_level(config: Mapping[str, Any], policy: str, default: str | None) -> str:
    for key in (policy, ALL):
        level = _entry(config, key).get(LEVEL_KEY)
        if level:
            return str(level)
    return default if default in LEVELS else "advisory"


def policy_values(config: Mapping[str, Any], policy: str) -> dict[str, Any]:
    """The policy's configuration without enforcementLevel (what Rego sees as input.config)."""
    return {k: v for k, v in _entry(config, policy).items() if k != LEVEL_KEY}


def check_config_schema(schema: Mapping[str, Any] | None, where: str) -> None:
    """Reject a configSchema that is not a valid JSON Schema."""
    if schema is None:
        return
    try:
        Draft202012Validator.check_schema(dict(schema))
    except SchemaError as exc:
        raise ConfigError(f"{where}: not a valid JSON Schema: {exc.message}") from None


def validate_policy_values(policy: str, values: Mapping[str, Any],
                           schema: Mapping[str, Any] | None) -> None:
    """Validate a policy's configuration values against its configSchema."""
    if not values:
        return
    if schema is None:
        raise ConfigError(f"config.{policy}: policy {policy!r} takes no configuration "
                          f"(got {', '.join(sorted(values))})")
    validator = Draft202012Validator(dict(schema))
    errors = sorted(validator.iter_errors(dict(values)), key=lambda e: list(e.path))
    if errors:
        error = errors[0]
        path = ".".join(str(p) for p in error.absolute_path)
        field = f"config.{policy}" + (f".{path}" if path else "")
        raise ConfigError(f"{field}: {error.message}")
