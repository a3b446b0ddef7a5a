"""Checking policy modules with the real OPA before a pack version is stored.

Each module is placed (``gavel.rego.place_module``) under a scratch package
``gavel.check.c<uuid>.p<index>`` — the version's database id does not exist yet —
PUT into OPA, inspected, then deleted. Placement keeps line numbers, so OPA's rows
and columns point into the module as published. A module must:

- compile (OPA's parse, type and safety errors are reported with row:col);
- define ``violations`` as a set: ``violations contains v if {...}`` or a complete
  rule (``violations := {...}``) whose value with an empty input is undefined or a
  set (arrays pass this check too: OPA answers sets as JSON arrays);
- read no ``data`` outside its own package, so packs cannot read each other.
  References to the author's original package name are caught by this too (after
  placement they would silently be undefined): refer to the package's own rules by
  their bare names;
- not define the rule ``__gavel_loaded`` (``gavel.rego.LOADED_MARKER``), which the
  worker appends to every module it loads.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import aiohttp
from opa_client import AsyncOpaClient
from opa_client.errors import DeletePolicyError, PolicyNotFoundError, RegoParseError

from gavel.rego import LOADED_MARKER, RegoError, place_module, policy_id, runner_id

log = logging.getLogger(__name__)
RULE = "violations"
EMPTY_INPUT: dict[str, Any] = {"entity": {}, "event": {}, "resources": [], "config": {}}


class OpaUnavailable(RuntimeError):
    pass


class ModuleRejected(ValueError):
    """A module failed a check; the message names the policy (``policies[i].rego``)."""


async def check_modules(client: AsyncOpaClient, regos: Sequence[str]) -> None:
    """Raise ModuleRejected with every module's problems, or OpaUnavailable."""
    scratch = f"c{uuid.uuid4().hex}"
    problems: list[str] = []
    try:
        for index, rego in enumerate(regos):
            problem = await _check_module(client, scratch, index, rego)
            if problem:
                problems.append(f"policies[{index}].rego: {problem}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise OpaUnavailable(f"OPA could not check the policies: {exc!r}") from None
    finally:
        await _delete_quietly(client, [f"gavel/check/{scratch}/p{i}" for i in range(len(regos))])
    if problems:
        raise ModuleRejected("; ".join(problems))


async def _check_module(client: AsyncOpaClient, scratch: str, index: int,
                        rego: str) -> str | None:
    package = f"gavel.check.{scratch}.p{index}"
    try:
        placed = place_module(rego, package)
    except RegoError as exc:
        return str(exc).removeprefix("rego: ")
    module_id = f"gavel/check/{scratch}/p{index}"
    try:
        await client.update_policy_from_string(placed, module_id, rego_compat=False)
    except RegoParseError as exc:
        return _opa_errors(exc)
    ast = (await client.get_policy(module_id))["result"]["ast"]
    return (_violations_rule_problem(ast) or _reserved_rule_problem(ast)
            or _foreign_data_problem(ast, package) or await _evaluation_problem(client, package))


def _opa_errors(exc: RegoParseError) -> str:
    details = [f"{e['location']['row']}:{e['location']['col']}: {e.get('code')}: "
               f"{e.get('message')}" if e.get("location") else f"{e.get('code')}: "
               f"{e.get('message')}" for e in exc.errors if isinstance(e, dict)]
    return "; ".join(details) or str(exc.message)


def _violations_rule_problem(ast: dict[str, Any]) -> str | None:
    heads = [rule["head"] for rule in ast.get("rules", [])
             if rule["head"].get("ref", [])[:1] == [{"type": "var", "value": RULE}]]
    if not heads:
        return f"the module defines no rule named '{RULE}' (the rule Gavel queries)"
    for head in heads:
        if "args" in head:
            return f"'{RULE}' must be a set, not a function"
        if len(head["ref"]) > 1 or ("key" in head and "value" in head):
            return f"'{RULE}' must be a set, not an object (use 'violations contains v if')"
    return None


def _reserved_rule_problem(ast: dict[str, Any]) -> str | None:
    if any(rule["head"].get("ref", [])[:1] == [{"type": "var", "value": LOADED_MARKER}]
           for rule in ast.get("rules", [])):
        return f"the rule name '{LOADED_MARKER}' is reserved for Gavel"
    return None


def _foreign_data_problem(ast: dict[str, Any], package: str) -> str | None:
    own = ["data", *package.split(".")]
    for ref in _refs(ast.get("rules", [])):
        if ref[:1] != [{"type": "var", "value": "data"}]:
            continue
        path = [str(term.get("value")) for term in ref]
        if path[:len(own)] != own:
            return (f"the module reads {'.'.join(path)}; a policy may read only input and the "
                    "rules of its own module")
    return None


def _refs(node: Any) -> Iterator[list[dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "ref" and isinstance(node.get("value"), list):
            yield node["value"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


async def _evaluation_problem(client: AsyncOpaClient, package: str) -> str | None:
    try:
        answer = await client.query_rule(EMPTY_INPUT, package, RULE)
    except aiohttp.ClientResponseError as exc:
        return f"evaluating '{RULE}' with an empty input failed (OPA answered {exc.status})"
    value = answer.get("result")
    if value is not None and not isinstance(value, list):
        return f"'{RULE}' must be a set (with an empty input it is {type(value).__name__})"
    return None


async def remove_version_modules(client: AsyncOpaClient, version_id: int,
                                 policy_count: int) -> None:
    """Delete a pack version's runner, then its modules, from OPA; modules never loaded
    are fine."""
    await _delete_quietly(client, [runner_id(version_id)])
    await _delete_quietly(client, [policy_id(version_id, i) for i in range(policy_count)])


async def _delete_quietly(client: AsyncOpaClient, module_ids: Sequence[str]) -> None:
    async def delete(module_id: str) -> None:
        try:
            await client.delete_policy(module_id)
        except (DeletePolicyError, PolicyNotFoundError):
            pass  # not loaded: nothing to remove
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not delete OPA module %s: %r", module_id, exc)

    await asyncio.gather(*(delete(m) for m in module_ids))
