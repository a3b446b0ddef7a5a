"""Outcome and blocking rules of DESIGN.md."""

from __future__ import annotations

import pytest

from worker.index import GroupRef
from worker.outcome import PackVerdict, is_blocking, outcome_of

PREVENTATIVE = (GroupRef("prod", "preventative"),)
AUDIT = (GroupRef("scan", "audit"),)


def verdict(levels: set[str] = frozenset(), groups=PREVENTATIVE, failed: bool = False):
    return PackVerdict(groups, frozenset(levels), failed)


def test_outcome_levels() -> None:
    assert outcome_of([]) == "pass"
    assert outcome_of([verdict()]) == "pass"
    assert outcome_of([verdict({"advisory"})]) == "advisory"
    assert outcome_of([verdict({"advisory"}), verdict({"mandatory"})]) == "mandatory"
    assert outcome_of([verdict({"mandatory"}), verdict(failed=True)]) == "error"


@pytest.mark.parametrize("kind", ["preview", "update"])
def test_mandatory_in_preventative_group_blocks_previews_and_updates(kind: str) -> None:
    assert is_blocking([verdict({"mandatory"})], kind, fail_open=False)


@pytest.mark.parametrize("kind", ["refresh", "destroy", "scan"])
def test_other_kinds_never_block(kind: str) -> None:
    assert not is_blocking([verdict({"mandatory"})], kind, fail_open=False)


def test_audit_groups_never_block() -> None:
    assert not is_blocking([verdict({"mandatory"}, AUDIT)], "preview", fail_open=False)
    assert not is_blocking([verdict(failed=True, groups=AUDIT)], "preview", fail_open=False)


def test_advisory_does_not_block() -> None:
    assert not is_blocking([verdict({"advisory"})], "update", fail_open=False)


def test_errors_block_unless_fail_open() -> None:
    assert is_blocking([verdict(failed=True)], "preview", fail_open=False)
    assert not is_blocking([verdict(failed=True)], "preview", fail_open=True)


def test_pack_applied_by_both_modes_blocks_through_the_preventative_one() -> None:
    both = (GroupRef("scan", "audit"), GroupRef("prod", "preventative"))
    assert is_blocking([verdict({"mandatory"}, both)], "preview", fail_open=False)
