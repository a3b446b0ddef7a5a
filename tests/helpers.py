"""Small helpers shared by tests."""

from __future__ import annotations


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}
