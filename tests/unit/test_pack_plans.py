"""An applied pack's plan is made once per applicable of the group index, and made
again when a group change brings a new applicable, even one alike in every value."""

from __future__ import annotations

from typing import Any

from worker.evaluate import PackPlans
from worker.index import Applicable, GroupRef
from worker.opa_runtime import PackVersion

REGO = 'package p\n\nviolations contains {"message": "x"}\n'
VERSION = PackVersion.of(7, [{"name": "tagged", "rego": REGO},
                             {"name": "sized", "rego": REGO}])


def applicable(config: dict[str, Any]) -> Applicable:
    return Applicable(version_id=VERSION.id, pack="p", version=1, version_tag="1",
                      config=config, groups=(GroupRef("g", "audit"),))


def test_an_applicable_runs_the_plan_made_for_it_the_first_time() -> None:
    plans = PackPlans()
    applied = applicable({"sized": {"enforcementLevel": "disabled"}})
    plan = plans.of(VERSION, applied)
    assert plans.of(VERSION, applied) is plan
    assert plan.disabled == ["sized"] and [p.name for p in plan.enabled] == ["tagged"]


def test_a_new_applicable_or_pack_version_gets_a_plan_of_its_own() -> None:
    plans = PackPlans()
    before = plans.of(VERSION, applicable({}))
    changed = plans.of(VERSION, applicable({"tagged": {"enforcementLevel": "disabled"}}))
    assert changed is not before and changed.disabled == ["tagged"]
    alike = applicable({})
    assert plans.of(VERSION, alike) is not before
    reread = PackVersion.of(VERSION.id, [{"name": "tagged", "rego": REGO},
                                         {"name": "sized", "rego": REGO}])
    assert plans.of(reread, alike) is not plans.of(VERSION, alike)


def test_its_memory_starts_over_when_full() -> None:
    plans = PackPlans(kept=3)
    kept = [applicable({}) for _ in range(10)]
    made = [plans.of(VERSION, a) for a in kept]
    assert len(plans._plans) <= 3
    assert plans.of(VERSION, kept[-1]) is made[-1]
