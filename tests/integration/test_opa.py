"""The real OPA, through opa-python-client."""

from __future__ import annotations

import uuid

import pytest
from opa_client.errors import RegoParseError

from gavel.opa import opa_client
from gavel.settings import Settings

MODULE = """package {package}

violations contains v if {{
    some r in input.resources
    r.properties.acl == "public-read"
    v := {{"message": sprintf("bucket %s is public", [r.name]), "urn": r.urn}}
}}
"""


async def test_load_module_and_query(settings: Settings) -> None:
    package = f"t{uuid.uuid4().hex[:8]}"
    async with opa_client(settings.opa) as client:
        assert await client.check_health()
        assert await client.update_policy_from_string(MODULE.format(package=package), package,
                                                      rego_compat=False)
        result = await client.query_rule(
            {"resources": [{"urn": "u1", "name": "logs", "properties": {"acl": "public-read"}},
                           {"urn": "u2", "name": "ok", "properties": {"acl": "private"}}]},
            package, "violations")
        assert result["result"] == [{"message": "bucket logs is public", "urn": "u1"}]
        await client.delete_policy(package)


async def test_syntax_error_is_reported(settings: Settings) -> None:
    async with opa_client(settings.opa) as client:
        with pytest.raises(RegoParseError):
            await client.update_policy_from_string("package x\nviolations contains if {",
                                                   f"bad{uuid.uuid4().hex[:6]}",
                                                   rego_compat=False)
