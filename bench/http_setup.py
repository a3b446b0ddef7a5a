"""Setting up an org over HTTP as a user would: publish the aws-baseline example pack,
create a policy group, register its stacks and apply the pack."""

from __future__ import annotations

from typing import Any

import asyncpg

from bench.gavel_client import GavelClient
from bench.packs import ORG, example_policies
from gavel.orgs import create_org

# the config the pipeline benchmark applies too: one policy with a non-default value
PACK_CONFIG: dict[str, Any] = {"required-tags": {"requiredTags": ["owner"]}}
BATCH = 1000  # the most updates one batch PATCH takes


async def org_token(pool: asyncpg.Pool) -> tuple[int, str]:
    """Create the bench org in the scratch database; (org id, admin token)."""
    return await create_org(pool, ORG)


def pack_body(name: str, version_tag: str) -> dict[str, Any]:
    """A publish request for the aws-baseline policies under ``name``."""
    policies = [{key: p[key] for key in ("name", "description", "enforcementLevel",
                                         "configSchema", "rego") if p.get(key) is not None}
                for p in example_policies()]
    return {"name": name, "displayName": name, "versionTag": version_tag,
            "policies": policies}


async def group_applying_baseline(client: GavelClient, group: str, mode: str,
                                  stacks: list[tuple[str, str]]) -> None:
    """A ``mode`` stack group with ``stacks`` as members and aws-baseline applied."""
    published = await client.publish_pack(pack_body("aws-baseline", "1.0.0"))
    await client.create_group(group, mode)
    for project, stack in stacks:
        await client.register_stack(project, stack)
    members = [{"addStack": {"name": s, "routingProject": p}} for p, s in stacks]
    for start in range(0, len(members), BATCH):
        await client.batch_update_group(group, members[start:start + BATCH])
    await client.update_group(group, {"addPolicyPack": {
        "name": "aws-baseline", "version": published["version"], "config": PACK_CONFIG}})
