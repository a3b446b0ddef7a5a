"""Placing policy modules in OPA under namespaces private to a pack version.

Each policy of a pack version lives at ``data.gavel.pv<versionId>.<slug>`` where
``versionId`` is the pack version's database id (unique across orgs) and ``slug`` is
``p<index of the policy in the version>``. Whatever package the author wrote is
replaced, so packs of different orgs and versions cannot read each other.
"""

from __future__ import annotations

import re

# a rule appended to every module the worker loads; a runner trusts a policy's
# results only while this rule is defined (the module is loaded, not half-removed)
LOADED_MARKER = "__gavel_loaded"

_PACKAGE = re.compile(r"^(\s*)package\s+[^\s#]+", re.MULTILINE)
_COMMENT_OR_BLANK = re.compile(r"^\s*(#.*)?$")


class RegoError(ValueError):
    """A module could not be placed or compiled; message is OPA's (or ours) with its line."""


def version_package(version_id: int) -> str:
    return f"gavel.pv{version_id}"


def policy_slug(index: int) -> str:
    return f"p{index}"


def policy_package(version_id: int, index: int) -> str:
    return f"{version_package(version_id)}.{policy_slug(index)}"


def policy_id(version_id: int, index: int) -> str:
    """OPA policy id (``PUT /v1/policies/{id}``) of one policy module."""
    return f"gavel/pv{version_id}/{policy_slug(index)}"


def runner_id(version_id: int) -> str:
    """OPA policy id of the worker's runner module of a pack version."""
    return f"gavel/run/pv{version_id}"


def place_module(rego: str, package: str) -> str:
    """Replace the module's ``package`` line (the first statement) with ``package``."""
    for line in rego.splitlines():
        if _COMMENT_OR_BLANK.match(line):
            continue
        if not _PACKAGE.match(line):
            raise RegoError("rego: the first statement must be a package declaration")
        break
    else:
        raise RegoError("rego: the module is empty")
    return _PACKAGE.sub(lambda m: f"{m[1]}package {package}", rego, count=1)


def loadable_module(rego: str, package: str) -> str:
    """``place_module`` plus the ``LOADED_MARKER`` rule after the author's last line."""
    return place_module(rego, package).rstrip() + f"\n\n{LOADED_MARKER} := true\n"
