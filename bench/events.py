"""Stack events as external producers write them to ``gavel.stack-events``."""

from __future__ import annotations

import random
import uuid
from typing import Any

from gavel.events import envelope

PROJECTS = ("web", "payments", "search", "data")
STACKS_PER_PROJECT = 50
KINDS = ("preview", "update")
INSTANCE_TYPES = ("t3.micro", "t3.small", "m5.large", "t3.medium")


def _bucket(rng: random.Random, prefix: str, i: int) -> dict[str, Any]:
    name = f"bucket-{i}"
    return {"urn": f"{prefix}aws:s3/bucket:Bucket::{name}", "type": "aws:s3/bucket:Bucket",
            "name": name, "provider": "aws",
            "properties": {"acl": rng.choice(("private", "private", "public-read")),
                           "tags": {"owner": "team"} if rng.random() < 0.8 else {}}}


def _volume(rng: random.Random, prefix: str, i: int) -> dict[str, Any]:
    name = f"volume-{i}"
    return {"urn": f"{prefix}aws:ebs/volume:Volume::{name}", "type": "aws:ebs/volume:Volume",
            "name": name, "provider": "aws",
            "properties": {"availabilityZone": "eu-west-1a", "size": 100,
                           "encrypted": rng.random() < 0.7, "tags": {"owner": "team"}}}


def _instance(rng: random.Random, prefix: str, i: int) -> dict[str, Any]:
    name = f"instance-{i}"
    return {"urn": f"{prefix}aws:ec2/instance:Instance::{name}",
            "type": "aws:ec2/instance:Instance", "name": name, "provider": "aws",
            "properties": {"ami": "ami-0abcdef1234567890",
                           "instanceType": rng.choice(INSTANCE_TYPES),
                           "tags": {"owner": "team", "Name": name}}}


def resources(rng: random.Random, project: str, stack: str, count: int) -> list[dict[str, Any]]:
    """``count`` resources, a mix of buckets, volumes and instances, some violating."""
    prefix = f"urn:pulumi:{stack}::{project}::"
    makers = (_bucket, _volume, _instance)
    return [makers[i % 3](rng, prefix, i) for i in range(count)]


def stack_event(rng: random.Random, org: str, sequence: int, resource_count: int,
                run: str) -> tuple[bytes, dict[str, Any]]:
    """(key, value) of one stack event; ``occurredAt`` is stamped at creation."""
    project = PROJECTS[sequence % len(PROJECTS)]
    stack = f"stack-{(sequence // len(PROJECTS)) % STACKS_PER_PROJECT}"
    value = envelope(org, project=project, stack=stack, kind=rng.choice(KINDS),
                     evaluationId=str(uuid.uuid4()),
                     resources=resources(rng, project, stack, resource_count))
    value["eventId"] = f"{run}-{sequence}"
    return f"{org}/{project}/{stack}".encode(), value
