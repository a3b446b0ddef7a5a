"""What the worker publishes (finished evaluations, dead letters) stays within a Kafka
message."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
from aiokafka.structs import ConsumerRecord

from worker.dead_letters import dead_letter_message
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


def record(value: bytes) -> ConsumerRecord:
    return ConsumerRecord(topic="gavel.stack-events", partition=2, offset=7, timestamp=0,
                          timestamp_type=0, key=b"acme/web/prod", value=value, checksum=None,
                          serialized_key_size=13, serialized_value_size=len(value), headers=())


def test_a_dead_letter_carries_the_value_when_it_fits() -> None:
    letter = orjson.loads(dead_letter_message(record(b'{"kind": 1}'), "kind: bad", 4096))
    assert letter == {"topic": "gavel.stack-events", "partition": 2, "offset": 7,
                      "error": "kind: bad", "value": '{"kind": 1}'}


def test_a_dead_letter_whose_escaped_value_would_not_fit_leaves_it_out() -> None:
    # 3,000 bytes of quotes escape to 6,000 in JSON
    value = dead_letter_message(record(b'"' * 3000), "value is not JSON", 4096)
    assert len(value) <= 4096
    letter = orjson.loads(value)
    assert letter["value"] is None and letter["valueOmitted"] == 3000
    assert letter["offset"] == 7 and letter["error"] == "value is not JSON"
