"""Effective enforcement levels and pack config validation."""

from __future__ import annotations

import pytest

from gavel.enforcement import (
    ConfigError,
    effective_level,
    normalize_config,
    policy_values,
    validate_policy_values,
)

POLICIES = ["no-public", "tags"]


def test_level_precedence() -> None:
    config = normalize_config({"all": {"enforcementLevel": "disabled"},
                               "tags": {"enforcementLevel": "mandatory"}}, POLICIES)
    assert effective_level(config, "tags", "advisory") == "mandatory"
    assert effective_level(config, "no-public", "mandatory") == "disabled"
    assert effective_level({}, "tags", "mandatory") == "mandatory"
    assert effective_level({}, "tags", None) == "advisory"


def test_shorthand_means_the_object_form() -> None:
    short = normalize_config({"all": "disabled", "tags": "mandatory"}, POLICIES)
    assert short == {"all": {"enforcementLevel": "disabled"},
                     "tags": {"enforcementLevel": "mandatory"}}
    assert effective_level({"all": "disabled"}, "tags", "advisory") == "disabled"


def test_values_exclude_the_level() -> None:
    config = {"tags": {"enforcementLevel": "advisory", "requiredTags": ["owner"]}}
    assert policy_values(config, "tags") == {"requiredTags": ["owner"]}
    assert policy_values(config, "no-public") == {}


@pytest.mark.parametrize(("config", "message"), [
    ({"tags": "blocking"}, "config.tags.enforcementLevel: must be one of"),
    ({"nope": "advisory"}, "config.nope: the pack has no policy named 'nope'"),
    ({"tags": 3}, "config.tags: must be an enforcement level or an object"),
])
def test_bad_config_names_the_field(config: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        normalize_config(config, POLICIES)


def test_values_are_validated_against_the_config_schema() -> None:
    schema = {"type": "object", "properties": {"requiredTags": {
        "type": "array", "items": {"type": "string"}}}, "additionalProperties": False}
    validate_policy_values("tags", {"requiredTags": ["owner"]}, schema)
    with pytest.raises(ConfigError, match=r"config\.tags\.requiredTags\.0: 5 is not of type"):
        validate_policy_values("tags", {"requiredTags": [5]}, schema)
    with pytest.raises(ConfigError, match="takes no configuration"):
        validate_policy_values("no-public", {"x": 1}, None)
