"""The change of the compliance counts, added up from current state deleted and inserted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gavel.compliance_changes import ChangeCounter, Changes, FoundViolations, PackRun
from gavel.compliance_summary import COUNT_TABLES

ORG, STACK = 7, "stack"
T0 = datetime(2026, 3, 1, tzinfo=UTC)
BLOCKS = {(ORG, STACK, "web/prod"): "", (ORG, STACK, "web/dev"): "web/d"}


def run(sign: int, pack: str = "baseline", groups: tuple[str, ...] = ("prod",),
        errored: bool = False, violations: int = 0, disabled: tuple[str, ...] = (),
        entity: str = "web/prod", version: int = 2) -> PackRun:
    return PackRun(sign, ORG, STACK, entity, pack, version, f"{version}.0.0", list(groups),
                   errored, violations, list(disabled))


def found(sign: int, policy: str, level: str = "mandatory", id_range: int = 1,
          pack: str = "baseline", groups: tuple[str, ...] = ("prod",), count: int = 1,
          entity: str = "web/prod", at: datetime = T0) -> FoundViolations:
    return FoundViolations(sign, ORG, STACK, entity, list(groups), pack, 2, policy, level,
                           id_range, count, at, at)


def changes(runs: list[PackRun], violations: list[FoundViolations]) -> Changes:
    counter = ChangeCounter()
    counter.add_runs(runs)
    counter.add_found(violations, BLOCKS)
    return counter.changes()


def test_a_new_entity_adds_to_every_count_of_its_groups_and_of_any_group() -> None:
    got = changes([run(1, violations=2)],
                  [found(1, "no-public"), found(1, "tags", "advisory", at=T0 + timedelta(1))])
    for group in ("prod", ""):
        assert got["pack"][(ORG, group, "baseline", 2, STACK)] == ["2.0.0", 1, 0, 0]
        assert got["policy"][(ORG, group, "baseline", 2, "no-public", STACK)] == [1, 0, 1, 0]
        assert got["policy"][(ORG, group, "baseline", 2, "tags", STACK)] == [1, 1, 0, 0]
        assert got["range"][(ORG, group, STACK, "mandatory", 1)] == [1, T0, T0]
        assert got["block"][(ORG, group, STACK, "advisory", "")] == [1]
    # groups: evaluated, errored, passing, advisory, mandatory; of any pack and of each
    assert got["group"] == {(ORG, "", "prod", STACK): [1, 0, 0, 1, 1],
                            (ORG, "baseline", "prod", STACK): [1, 0, 0, 1, 1]}


def test_the_same_result_again_changes_only_the_ranges_its_ids_move_between() -> None:
    before = [run(-1, violations=1)], [found(-1, "no-public", id_range=1)]
    after = [run(1, violations=1)], [found(1, "no-public", id_range=4, at=T0 + timedelta(1))]
    got = changes(before[0] + after[0], before[1] + after[1])
    assert not any(got[kind] for kind in ("pack", "policy", "group", "block"))
    later = T0 + timedelta(1)
    assert got["range"] == {(ORG, "prod", STACK, "mandatory", 1): [-1, None, None],
                            (ORG, "", STACK, "mandatory", 1): [-1, None, None],
                            (ORG, "prod", STACK, "mandatory", 4): [1, later, later],
                            (ORG, "", STACK, "mandatory", 4): [1, later, later]}


def test_a_range_whose_violations_are_replaced_keeps_its_count_and_widens_its_bounds(
        ) -> None:
    later = T0 + timedelta(hours=5)
    got = changes([], [found(-1, "no-public", count=3), found(1, "no-public", count=3, at=later)])
    assert got["range"][(ORG, "", STACK, "mandatory", 1)] == [0, later, later]
    assert not got["block"]


def test_a_pack_version_run_twice_passes_only_if_both_runs_pass() -> None:
    got = changes([run(1, groups=("prod",)), run(1, groups=("shared",), violations=1)],
                  [found(1, "no-public", groups=("shared",))])
    assert got["pack"][(ORG, "prod", "baseline", 2, STACK)] == ["2.0.0", 1, 0, 1]
    assert got["pack"][(ORG, "shared", "baseline", 2, STACK)] == ["2.0.0", 1, 0, 0]
    # under any group the entity counts once, and does not pass
    assert got["pack"][(ORG, "", "baseline", 2, STACK)] == ["2.0.0", 1, 0, 0]
    assert got["group"][(ORG, "", "prod", STACK)] == [1, 0, 1, 0, 0]


def test_a_policy_of_an_errored_run_fails_no_entity_but_its_violations_count() -> None:
    got = changes([run(1, errored=True, violations=1)], [found(1, "no-public")])
    assert got["pack"][(ORG, "", "baseline", 2, STACK)] == ["2.0.0", 1, 1, 0]
    assert got["policy"][(ORG, "", "baseline", 2, "no-public", STACK)] == [0, 0, 1, 0]
    assert got["group"][(ORG, "", "prod", STACK)] == [1, 1, 0, 0, 1]


def test_a_policy_is_skipped_where_it_was_disabled_in_every_run_that_did_not_error() -> None:
    every = changes([run(1, groups=("prod",), disabled=("tags",)),
                     run(1, groups=("shared",), disabled=("tags",))], [])
    assert every["policy"][(ORG, "", "baseline", 2, "tags", STACK)] == [0, 0, 0, 1]
    assert every["policy"][(ORG, "prod", "baseline", 2, "tags", STACK)] == [0, 0, 0, 1]
    one = changes([run(1, groups=("prod",), disabled=("tags",)), run(1, groups=("shared",))],
                  [])
    assert (ORG, "", "baseline", 2, "tags", STACK) not in one["policy"]
    assert one["policy"][(ORG, "prod", "baseline", 2, "tags", STACK)] == [0, 0, 0, 1]
    errored = changes([run(1, errored=True, disabled=("tags",))], [])
    assert not errored["policy"]


def test_violations_count_in_their_entitys_block() -> None:
    got = changes([], [found(1, "no-public", entity="web/dev", count=2),
                       found(1, "no-public", entity="web/prod")])
    assert got["block"] == {(ORG, "prod", STACK, "mandatory", "web/d"): [2],
                            (ORG, "", STACK, "mandatory", "web/d"): [2],
                            (ORG, "prod", STACK, "mandatory", ""): [1],
                            (ORG, "", STACK, "mandatory", ""): [1]}


def test_the_changes_have_the_shape_of_the_count_tables() -> None:
    got = changes([run(1, violations=1, disabled=("tags",))], [found(1, "no-public")])
    for table in COUNT_TABLES:
        rows: dict[tuple[Any, ...], list[Any]] = got[table.kind]
        assert rows, table.kind
        for key, fields in rows.items():
            assert len(key) == len(table.keys) and len(fields) == len(table.fields)
