"""The pydantic type for names of policy groups, stacks, projects and accounts.

They appear as single URL path segments, so only letters, digits, ``-``, ``_`` and
``.`` are allowed ``.`` and ``..`` alone would be rewritten
by URL normalization.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_DOT_SEGMENTS = frozenset({".", ".."})


def name_problem(value: str) -> str | None:
    """Why ``value`` is not a valid name, or None when it is."""
    if not _NAME.match(value):
        return f"must be 1 to 100 letters, digits, '-', '_' or '.' (got {value[:50]!r})"
    if value in _DOT_SEGMENTS:
        return f"{value!r} is not a usable name"
    return None


def _checked(value: str) -> str:
    problem = name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Name = Annotated[str, StringConstraints(max_length=100), AfterValidator(_checked)]


class InvalidName(ValueError):
    pass


def check_name(value: str, field: str) -> str:
    """``value`` if it is a valid name, else InvalidName naming ``field``."""
    problem = name_problem(value)
    if problem:
        raise InvalidName(f"{field}: {problem}")
    return value
