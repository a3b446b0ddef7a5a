"""Validating the config of a pack applied to a group."""

from __future__ import annotations

import pytest

from gavel.enforcement import ConfigError
from gavel.pack_config import validated_config

POLICIES = [
    {"name": "sized", "enforcementLevel": "advisory",
     "configSchema": {"type": "object", "properties": {"maxSize": {"type": "integer"}}}},
    {"name": "plain", "enforcementLevel": "mandatory"},
]


def test_shorthand_and_object_forms_normalize_alike() -> None:
    assert validated_config({"all": "disabled", "plain": "mandatory"}, POLICIES) == \
        validated_config({"all": {"enforcementLevel": "disabled"},
                          "plain": {"enforcementLevel": "mandatory"}}, POLICIES)
    assert validated_config(None, POLICIES) == {}


@pytest.mark.parametrize(("config", "field"), [
    ({"sized": {"maxSize": "ten"}}, "config.sized.maxSize"),
    ({"plain": {"x": 1}}, "config.plain"),
    ({"all": {"maxSize": 1}}, "config.all"),
    ({"nope": "advisory"}, "config.nope"),
])
def test_refusals_name_the_policy_and_field(config: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{field}:"):
        validated_config(config, POLICIES)
