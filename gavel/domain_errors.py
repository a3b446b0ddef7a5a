"""Refusals raised by the storage layer; the HTTP layer maps each kind to a status.

Messages are written for the API user: they name the entity or the field at fault.
"""

from __future__ import annotations


class DomainError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def prefixed(self, prefix: str) -> DomainError:
        """The same refusal with a location in front (e.g. the index in a batch)."""
        return type(self)(f"{prefix}{self.message}")


class NotFoundError(DomainError):
    """A named organization member (group, stack, account, pack, version) does not exist."""


class ConflictError(DomainError):
    """The change collides with something that already exists."""


class InvalidError(DomainError):
    """The request is well-formed but not allowed (e.g. deleting a default group)."""
