"""The pack versions a worker has in OPA, least recently used first, each with the
OPA policy ids to delete when it is removed (runner first).

Versions OPA already held when the worker started (left by an earlier worker process
on an OPA that outlived it) are inherited: they count toward the limit and are
removed first, but are never trusted as loaded; the worker PUTs a version again
before it queries it, as the same id may have held other modules.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable

_MODULE_ID = re.compile(r"^gavel/(?:run/pv(?P<runner>\d+)|pv(?P<policy>\d+)/p\d+)$")


class LoadedVersions:
    def __init__(self) -> None:
        self._modules: OrderedDict[int, tuple[str, ...]] = OrderedDict()
        self._inherited: set[int] = set()

    def __contains__(self, version_id: object) -> bool:
        """Loaded by this worker (not inherited) and not removed since."""
        return version_id in self._modules and version_id not in self._inherited

    def __len__(self) -> int:
        return len(self._modules)

    def ids(self) -> list[int]:
        return list(self._modules)

    def touch(self, version_id: int) -> None:
        self._modules.move_to_end(version_id)

    def add(self, version_id: int, module_ids: tuple[str, ...]) -> None:
        self._modules[version_id] = module_ids
        self._modules.move_to_end(version_id)

    def discard(self, version_id: int) -> tuple[str, ...]:
        """Forget a version; its module ids as recorded (none if unknown)."""
        self._inherited.discard(version_id)
        return self._modules.pop(version_id, ())

    def pop_oldest(self) -> tuple[int, tuple[str, ...]]:
        version_id, module_ids = self._modules.popitem(last=False)
        self._inherited.discard(version_id)
        return version_id, module_ids

    def put_back_oldest(self, version_id: int, module_ids: tuple[str, ...]) -> None:
        self._modules[version_id] = module_ids
        self._modules.move_to_end(version_id, last=False)

    def inherit(self, policy_ids: Iterable[str]) -> int:
        """Record versions OPA holds (its policy ids) as the least recently used."""
        found: dict[int, list[str]] = {}
        for policy_id in policy_ids:
            match = _MODULE_ID.match(policy_id)
            if match:
                version_id = int(match["runner"] or match["policy"])
                found.setdefault(version_id, []).append(policy_id)
        new = {v: ids for v, ids in found.items() if v not in self._modules}
        for version_id, ids in sorted(new.items(), reverse=True):
            self._modules[version_id] = tuple(sorted(ids, key=_runner_first))
            self._modules.move_to_end(version_id, last=False)
            self._inherited.add(version_id)
        return len(new)


def _runner_first(policy_id: str) -> tuple[bool, str]:
    return (not policy_id.startswith("gavel/run/"), policy_id)
