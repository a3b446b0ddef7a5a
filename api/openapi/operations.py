"""Operations: Prometheus metrics."""

from __future__ import annotations

from typing import Any

PATHS: dict[str, Any] = {
    "/metrics": {"get": {
        "summary": "Prometheus metrics in the text exposition format (no token)",
        "description": (
            "Events consumed, evaluations by outcome and their latency from the event's "
            "time, OPA time per pack, dead letters, consumer lag, outbox backlog and "
            "running audits. In the all-in-one mode the worker's metrics are included."),
        "security": [],
        "responses": {"200": {"description": "success",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
}
