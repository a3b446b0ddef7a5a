"""The finished evaluation published on gavel.evaluations stays within a Kafka message."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson

from worker.evaluate import PackResult, Violation
from worker.index import Applicable, GroupRef
from worker.pipeline import summary_message
from worker.store import Finished


def finished(violations: int) -> Finished:
    applicable = Applicable(version_id=1, pack="baseline", version=1, version_tag="1.0.0",
                            config={}, groups=(GroupRef("prod", "preventative"),))
    found = [Violation(groups=["prod"], pack="baseline", pack_version=1, version_tag="1.0.0",
                       policy="required-tags", level="mandatory", urn=f"urn:r{i}",
                       message="missing tag 'owner'", details=None) for i in range(violations)]
    return Finished(evaluation_id=uuid.uuid4(), event_id="e1", org_id=1, entity_type="stack",
                    entity_key="web/prod", kind="update", occurred_at=datetime.now(UTC),
                    resource_count=violations, outcome="fail", blocking=True,
                    packs=[PackResult(applicable, violations=found)], opa_version="1.0")


def test_the_violations_are_listed_when_they_fit() -> None:
    summary = orjson.loads(summary_message("acme", finished(3), "2026-11-22T00:00:00Z", 4096))
    assert [v["urn"] for v in summary["violations"]] == ["urn:r0", "urn:r1", "urn:r2"]
    assert "violationsOmitted" not in summary


def test_over_the_limit_the_violations_are_counted_not_listed() -> None:
    value = summary_message("acme", finished(200), "2026-11-22T00:00:00Z", 4096)
    assert len(value) <= 4096
    summary = orjson.loads(value)
    assert summary["violations"] == [] and summary["violationsOmitted"] == 200
    assert summary["outcome"] == "fail" and summary["blocking"] is True
