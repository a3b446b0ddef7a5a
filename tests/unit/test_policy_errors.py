"""A pack whose query fails is run a policy at a time (fake OPA and catalog: pure
logic): the policies that run keep their violations, those that fail are told."""

from __future__ import annotations

from typing import Any

from worker.evaluate import Evaluator
from worker.index import Applicable, GroupRef
from worker.opa_runtime import PackFailed, PackVersion


def version(*names: str) -> PackVersion:
    return PackVersion.of(7, [{"name": name, "enforcementLevel": "mandatory",
                               "rego": "package p\nviolations := set()"} for name in names])


VERSION = version("public", "broken", "tags")
APPLICABLE = Applicable(7, "baseline", 1, "1.0.0", {}, (GroupRef("prod", "preventative"),))


class Catalog:
    def __init__(self, pack: PackVersion = VERSION) -> None:
        self.pack = pack

    async def get(self, version_id: int) -> PackVersion:
        return self.pack


class Opa:
    """Finds one violation per policy asked; fails a query asking for a policy in
    ``broken``, and one asking for more than ``most`` policies."""

    def __init__(self, broken: set[str], most: int = 99) -> None:
        self.broken, self.most = broken, most
        self.asked: list[list[str]] = []

    async def evaluate(self, pack: PackVersion, input_doc: dict[str, Any]
                       ) -> tuple[dict[str, Any], str | None, float]:
        slugs = input_doc["policies"]
        self.asked.append(slugs)
        assert set(input_doc["configs"]) == set(slugs)
        if set(slugs) & self.broken:
            raise PackFailed("OPA 500: eval_conflict_error")
        if len(slugs) > self.most:
            raise PackFailed("OPA did not answer within 1s")
        return {s: [{"urn": f"urn:{s}", "message": "found"}] for s in slugs}, "d", 1.0

    async def evaluate_batch(self, pack: PackVersion, input_docs: list[dict[str, Any]]
                             ) -> tuple[list[dict[str, Any]], str | None, float]:
        raise PackFailed("batch")  # the batcher asks each query alone


async def _evaluate(opa: Opa) -> Any:
    evaluator = Evaluator(Catalog(), opa)  # type: ignore[arg-type]
    [result] = await evaluator.evaluate((APPLICABLE,), {"resources": []})
    return result


async def test_a_failing_policy_is_told_and_the_others_keep_their_violations() -> None:
    opa = Opa(broken={"p1"})
    result = await _evaluate(opa)
    assert result.error == "policy 'broken' not evaluated: OPA 500: eval_conflict_error"
    assert [(v.policy, v.urn) for v in result.violations] == [("public", "urn:p0"),
                                                              ("tags", "urn:p2")]
    assert sorted(opa.asked) == [["p0"], ["p0", "p1", "p2"], ["p1"], ["p2"]]


async def test_policies_that_all_run_alone_are_the_packs_answer() -> None:
    result = await _evaluate(Opa(broken=set(), most=1))
    assert result.error is None
    assert [v.policy for v in result.violations] == ["public", "broken", "tags"]


async def test_a_pack_of_one_failing_policy_fails_as_it_is() -> None:
    evaluator = Evaluator(Catalog(version("broken")), Opa(broken={"p0"}))  # type: ignore[arg-type]
    [result] = await evaluator.evaluate((APPLICABLE,), {"resources": []})
    assert result.error == "OPA 500: eval_conflict_error" and result.violations == []
