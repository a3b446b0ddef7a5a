"""A benchmark's figures: printed as a table, optionally written as JSON."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class Report:
    name: str
    parameters: dict[str, Any]
    rows: list[tuple[str, float | int | str, str]] = field(default_factory=list)

    def add(self, figure: str, value: float | int | str, unit: str = "") -> None:
        self.rows.append((figure, value, unit))

    def print(self) -> None:
        params = ", ".join(f"{k}={v}" for k, v in self.parameters.items())
        print(f"\n{self.name} ({params})")
        width = max(len(r[0]) for r in self.rows) if self.rows else 10
        for figure, value, unit in self.rows:
            shown = f"{value:,.3f}" if isinstance(value, float) else f"{value:,}" \
                if isinstance(value, int) else value
            print(f"  {figure:<{width}}  {shown:>14}  {unit}")

    def write_json(self, path: str) -> None:
        document = {
            "benchmark": self.name, "parameters": self.parameters,
            "measuredAt": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "figures": {figure: {"value": value, "unit": unit}
                        for figure, value, unit in self.rows}}
        with open(path, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2)
            out.write("\n")


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (which need not be sorted)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[rank]
