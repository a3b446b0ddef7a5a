"""Names of projects, stacks and other path segments."""

from __future__ import annotations

import re

NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class InvalidName(ValueError):
    pass


def check_name(value: str, field: str) -> str:
    if not NAME.match(value):
        raise InvalidName(f"{field}: {value!r} is not a valid name (1-100 letters, digits, "
                          "'.', '_' or '-')")
    return value
