"""The worker as a separate ``python -m gavel.cli worker`` process (so the producer
does not take its CPU), optionally sampled by py-spy."""

from __future__ import annotations

from pathlib import Path

from bench.processes import GavelProcess


class WorkerProcess(GavelProcess):
    def __init__(self, env: dict[str, str], log_path: Path, name: str = "worker",
                 cpus: frozenset[int] | None = None) -> None:
        super().__init__("worker", env, log_path, name, cpus)
