"""The worker as a separate ``python -m gavel.cli worker`` process (so the producer
does not take its CPU), optionally sampled by py-spy."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self._env = {**os.environ, **env}
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._profiler: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log_path.open("wb") as log:
            self._proc = subprocess.Popen([sys.executable, "-m", "gavel.cli", "worker"],
                                          env=self._env, stdout=log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start_profile(self, output: Path) -> None:
        """Sample the worker with py-spy (speedscope format) until ``stop_profile``."""
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        assert self._proc is not None
        self._profiler = subprocess.Popen(
            [py_spy, "record", "--pid", str(self._proc.pid), "--rate", "200",
             "--format", "speedscope", "--output", str(output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop_profile(self) -> None:
        if self._profiler is not None:
            self._profiler.send_signal(signal.SIGINT)
            self._profiler.wait(timeout=60)
            self._profiler = None

    def stop(self, grace: float = 30.0) -> None:
        self.stop_profile()
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
