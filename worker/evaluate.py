"""Evaluate one event: every applicable pack in OPA, concurrently (bounded)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from gavel.enforcement import effective_level, policy_values
from gavel.metrics import record_pack_duration
from worker.index import Applicable
from worker.opa_batcher import OpaBatcher
from worker.opa_runtime import (
    OpaRuntime,
    OpaUnavailable,
    PackCatalog,
    PackFailed,
    PackVersion,
    Policy,
)
from worker.outcome import PackVerdict

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Violation:
    groups: list[str]
    pack: str
    pack_version: int
    version_tag: str
    policy: str
    level: str
    urn: str | None
    message: str
    details: Any


@dataclass(slots=True)
class PackResult:
    applicable: Applicable
    duration_ms: float = 0.0
    decision_id: str | None = None
    # events evaluated by the same OPA query (duration_ms is that query's)
    batched: int = 1
    error: str | None = None
    violations: list[Violation] = field(default_factory=list)
    # the pack's policies that the config disables: not run, so neither failed nor passed
    disabled: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> PackVerdict:
        return PackVerdict(self.applicable.groups, frozenset(v.level for v in self.violations),
                           self.error is not None)

    def provenance(self, opa_version: str) -> dict[str, Any]:
        a = self.applicable
        return {"name": a.pack, "version": a.version, "versionTag": a.version_tag,
                "groups": [{"name": g.name, "mode": g.mode} for g in a.groups],
                "opaVersion": opa_version, "decisionId": self.decision_id,
                "durationMs": round(self.duration_ms, 3), "batchSize": self.batched,
                "status": "error" if self.error else "ok", "error": self.error,
                "violations": len(self.violations), "disabledPolicies": self.disabled}


@dataclass(frozen=True, slots=True)
class PackPlan:
    """How a pack version runs under an applied config: each policy's effective level,
    the policies that run, and what the pack's query adds to the event's input."""

    levels: dict[str, str]  # slug -> level
    enabled: list[Policy]
    disabled: list[str]  # names
    fields: dict[str, Any]

    @classmethod
    def of(cls, pack: PackVersion, config: dict[str, Any]) -> PackPlan:
        levels = {p.slug: effective_level(config, p.name, p.default_level)
                  for p in pack.policies}
        enabled = [p for p in pack.policies if levels[p.slug] != "disabled"]
        # input.config is the empty config, which most policies run with: the runner
        # gives a policy whose own config differs its own (worker.opa_runtime)
        fields = {"policies": [p.slug for p in enabled],
                  "configs": {p.slug: policy_values(config, p.name) for p in enabled},
                  "config": {}}
        return cls(levels, enabled,
                   [p.name for p in pack.policies if levels[p.slug] == "disabled"], fields)

    def input_for(self, base_input: dict[str, Any]) -> dict[str, Any]:
        """The pack's input document for an event's base input."""
        return {**base_input, **self.fields}

    def alone(self, policy: Policy, base_input: dict[str, Any]) -> dict[str, Any]:
        """The input document running one enabled policy of the pack only."""
        return {**self.input_for(base_input), "policies": [policy.slug],
                "configs": {policy.slug: self.fields["configs"][policy.slug]}}


class PackPlans:
    """Each applied pack's plan, made once: an ``Applicable`` of the group index lives
    until its group changes, and every event resolved to it runs the same plan. Kept
    by the applicable's identity (it holds a dict, so it has no hash), with the
    applicable and pack version held so that the identity cannot pass to another
    object; at most ``kept`` plans, past which the memory starts over."""

    def __init__(self, kept: int = 4096) -> None:
        self._kept = kept
        self._plans: dict[int, tuple[Applicable, PackVersion, PackPlan]] = {}

    def of(self, pack: PackVersion, applicable: Applicable) -> PackPlan:
        entry = self._plans.get(id(applicable))
        if entry is not None and entry[0] is applicable and entry[1] is pack:
            return entry[2]
        if len(self._plans) >= self._kept:
            self._plans.clear()
        plan = PackPlan.of(pack, applicable.config)
        self._plans[id(applicable)] = (applicable, pack, plan)
        return plan


class Evaluator:
    def __init__(self, catalog: PackCatalog, runtime: OpaRuntime, max_requests: int = 4,
                 batch_size: int = 32, retry_max_delay: float = 5.0) -> None:
        self._catalog = catalog
        self._plans = PackPlans()
        self._opa = OpaBatcher(runtime, max_requests=max_requests, max_batch=batch_size)
        self._retry_max_delay = retry_max_delay
        self.opa_down = False

    async def evaluate(self, applicables: tuple[Applicable, ...],
                       base_input: dict[str, Any]) -> list[PackResult]:
        return list(await asyncio.gather(*(self._one(a, base_input) for a in applicables)))

    async def _one(self, applicable: Applicable, base_input: dict[str, Any]) -> PackResult:
        result = PackResult(applicable)
        delay = 0.2
        while True:
            try:
                await self._run(result, base_input)
                self.opa_down = False
                return result
            except OpaUnavailable as exc:
                # the event waits for OPA; it is never skipped
                self.opa_down = True
                log.warning("%s; retrying pack %s in %.1fs", exc, applicable.pack, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_delay)
            except PackFailed as exc:
                result.error = str(exc)
                return result

    async def _each_alone(self, pack: PackVersion, plan: PackPlan, base_input: dict[str, Any]
                          ) -> tuple[dict[str, list[Any]], list[str]]:
        """Run each enabled policy of a pack whose query failed on its own: the others'
        violations are kept, and the failing ones' errors told (as Terraform Cloud and
        OPA's own test runner report each policy)."""
        found: dict[str, list[Any]] = {}
        errors: list[str] = []
        answers = await asyncio.gather(*(
            self._opa.evaluate(pack, plan.alone(policy, base_input))
            for policy in plan.enabled), return_exceptions=True)
        for policy, answer in zip(plan.enabled, answers, strict=True):
            if isinstance(answer, PackFailed):
                errors.append(f"policy '{policy.name}' not evaluated: {answer}")
            elif isinstance(answer, BaseException):
                raise answer
            else:
                found[policy.slug] = answer[0].get(policy.slug, [])
        return found, errors

    async def _run(self, result: PackResult, base_input: dict[str, Any]) -> None:
        applicable = result.applicable
        pack = await self._catalog.get(applicable.version_id)
        plan = self._plans.of(pack, applicable)
        result.disabled = plan.disabled
        if not plan.enabled:
            return
        try:
            found, decision_id, elapsed, batched = await self._opa.evaluate(
                pack, plan.input_for(base_input))
        except PackFailed:
            if len(plan.enabled) == 1:
                raise
            # each alone: the answers of those that run are the pack's answers for them
            found, errors = await self._each_alone(pack, plan, base_input)
            result.error = "; ".join(errors) or None
        else:
            result.duration_ms, result.decision_id, result.batched = (elapsed, decision_id,
                                                                      batched)
            record_pack_duration(applicable.pack, elapsed)
        groups = [g.name for g in applicable.groups]
        for policy in plan.enabled:
            for item in found.get(policy.slug, []):
                item = item if isinstance(item, dict) else {"message": str(item)}
                result.violations.append(Violation(
                    groups=groups, pack=applicable.pack, pack_version=applicable.version,
                    version_tag=applicable.version_tag, policy=policy.name,
                    level=plan.levels[policy.slug], urn=item.get("urn"),
                    message=str(item.get("message", "")), details=item.get("details")))
