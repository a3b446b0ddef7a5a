"""The example packs under examples/, loaded into the real OPA under their namespaces."""

from __future__ import annotations

import importlib.util
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from gavel.opa import opa_client
from gavel.pack_check import check_modules
from gavel.rego import place_module, policy_id, policy_package
from gavel.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PACK = json.loads((EXAMPLES / "aws-baseline.json").read_text())
POLICIES = {p["name"]: index for index, p in enumerate(PACK["policies"])}

Evaluate = Callable[[str, list[dict[str, Any]], dict[str, Any]],
                    Awaitable[list[dict[str, Any]]]]


def _build_pack_module() -> Any:
    spec = importlib.util.spec_from_file_location("build_pack", EXAMPLES / "build_pack.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resource(kind: str, name: str, **properties: Any) -> dict[str, Any]:
    return {"urn": f"urn:pulumi:prod::web::{kind}::{name}", "type": kind, "name": name,
            "provider": "aws", "properties": properties}


def bucket(name: str, acl: str) -> dict[str, Any]:
    return resource("aws:s3/bucket:Bucket", name, acl=acl, tags={"owner": "ops"})


def volume(name: str, **properties: Any) -> dict[str, Any]:
    return resource("aws:ebs/volume:Volume", name, size=8, **properties)


def instance(name: str, instance_type: str, **tags: str) -> dict[str, Any]:
    return resource("aws:ec2/instance:Instance", name, instanceType=instance_type, tags=tags)


@pytest_asyncio.fixture
async def evaluate(settings: Settings) -> AsyncIterator[Evaluate]:
    """Load the pack as a version would be loaded; evaluate one policy's violations."""
    version_id = random.randrange(10**12, 10**13)  # far from any real version id
    async with opa_client(settings.opa) as opa:
        for index, policy in enumerate(PACK["policies"]):
            module = place_module(policy["rego"], policy_package(version_id, index))
            await opa.update_policy_from_string(module, policy_id(version_id, index),
                                                rego_compat=False)

        async def run(policy: str, resources: list[dict[str, Any]],
                      config: dict[str, Any]) -> list[dict[str, Any]]:
            document = {"entity": {"type": "stack", "org": "acme", "project": "web",
                                   "stack": "prod"},
                        "event": {"kind": "preview", "id": "e1"},
                        "resources": resources, "config": config}
            answer = await opa.query_rule(
                document, policy_package(version_id, POLICIES[policy]), "violations")
            return list(answer["result"])

        yield run
        for index in range(len(PACK["policies"])):
            await opa.delete_policy(policy_id(version_id, index))


def test_json_is_built_from_the_rego_sources() -> None:
    assert _build_pack_module().main(["--check", str(EXAMPLES / "aws-baseline")]) == 0
    assert set(POLICIES) == {"s3-no-public-read", "ebs-volumes-encrypted", "required-tags",
                             "ec2-instance-type-allowlist"}
    levels = {p["name"]: p["enforcementLevel"] for p in PACK["policies"]}
    assert levels["s3-no-public-read"] == levels["ebs-volumes-encrypted"] == "mandatory"
    assert levels["required-tags"] == levels["ec2-instance-type-allowlist"] == "advisory"


async def test_every_module_passes_the_publish_checks(settings: Settings) -> None:
    async with opa_client(settings.opa) as opa:
        await check_modules(opa, [p["rego"] for p in PACK["policies"]])


@pytest.mark.parametrize("acl", ["public-read", "public-read-write"])
async def test_public_buckets(evaluate: Evaluate, acl: str) -> None:
    found = await evaluate("s3-no-public-read",
                           [bucket("site", acl), bucket("logs", "private")], {})
    assert found == [{"message": f"S3 bucket site has the public ACL {acl}",
                      "urn": "urn:pulumi:prod::web::aws:s3/bucket:Bucket::site",
                      "details": {"acl": acl}}]


async def test_unencrypted_volumes(evaluate: Evaluate) -> None:
    found = await evaluate("ebs-volumes-encrypted",
                           [volume("plain", encrypted=False), volume("unset"),
                            volume("safe", encrypted=True)], {})
    assert sorted(v["message"] for v in found) == ["EBS volume plain is not encrypted",
                                                   "EBS volume unset is not encrypted"]


async def test_required_tags_default_to_owner(evaluate: Evaluate) -> None:
    resources = [instance("bare", "t3.micro", Name="bare"),
                 instance("empty", "t3.micro", owner=""),
                 instance("owned", "t3.micro", owner="ops"),
                 resource("aws:s3/bucketPolicy:BucketPolicy", "not-taggable")]
    found = await evaluate("required-tags", resources, {})
    assert sorted((v["urn"].rsplit("::", 1)[1], v["details"]["missingTags"]) for v in found) \
        == [("bare", ["owner"]), ("empty", ["owner"])]
    assert "aws:ec2/instance:Instance bare is missing required tags: owner" in [
        v["message"] for v in found]


async def test_required_tags_follow_config(evaluate: Evaluate) -> None:
    resources = [instance("owned", "t3.micro", owner="ops"),
                 instance("costed", "t3.micro", owner="ops", costCenter="42")]
    found = await evaluate("required-tags", resources,
                           {"requiredTags": ["owner", "costCenter"]})
    assert [(v["urn"].rsplit("::", 1)[1], v["details"]["missingTags"]) for v in found] == [
        ("owned", ["costCenter"])]
    assert await evaluate("required-tags", [instance("bare", "t3.micro")],
                          {"requiredTags": []}) == []


async def test_instance_types_allowlist(evaluate: Evaluate) -> None:
    resources = [instance("small", "t3.small"), instance("huge", "m5.24xlarge")]
    found = await evaluate("ec2-instance-type-allowlist", resources, {})
    assert [v["urn"].rsplit("::", 1)[1] for v in found] == ["huge"]
    assert found[0]["details"] == {"instanceType": "m5.24xlarge",
                                   "allowedTypes": ["t3.micro", "t3.small", "t3.medium"]}

    allow_huge = {"allowedTypes": ["m5.24xlarge"]}
    found = await evaluate("ec2-instance-type-allowlist", resources, allow_huge)
    assert [v["urn"].rsplit("::", 1)[1] for v in found] == ["small"]


async def test_sample_preview_breaks_every_policy(evaluate: Evaluate) -> None:
    event = json.loads((EXAMPLES / "sample-preview.json").read_text())
    assert event["kind"] == "preview"
    found = {name: await evaluate(name, event["resources"], {}) for name in POLICIES}
    names = {name: sorted(v["urn"].rsplit("::", 1)[1] for v in violations)
             for name, violations in found.items()}
    assert names == {"s3-no-public-read": ["site-assets"],
                     "ebs-volumes-encrypted": ["data"],
                     "required-tags": ["web-1"],
                     "ec2-instance-type-allowlist": ["web-1"]}
