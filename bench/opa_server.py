"""OPA servers a benchmark starts itself, from the binary the dev stack builds, on a
free loopback port: a private one to load modules into, or an evaluating one next to
each worker, as the Kubernetes manifest runs it (a sidecar with the stack's GOGC)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from types import ModuleType

from bench.processes import cpu_seconds, free_port, pin_to, terminate

DEVSTACK = Path(__file__).resolve().parent.parent / "deploy" / "local" / "devstack.py"


@cache
def _devstack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gavel_devstack", DEVSTACK)
    assert spec is not None and spec.loader is not None
    devstack = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = devstack
    spec.loader.exec_module(devstack)
    return devstack


def opa_binary() -> Path:
    """The dev stack's OPA binary (built once into the cache if it is not there)."""
    return Path(_devstack().opa_binary())


class OpaServer:
    """``opa run --server`` as a child process; ``evaluating`` gives it the garbage
    collector setting of the stack's evaluating OPA, ``cpus`` the CPUs it may use."""

    def __init__(self, name: str, *, directory: Path | None = None, evaluating: bool = False,
                 cpus: frozenset[int] | None = None, log_path: Path | None = None) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._directory = directory
        self._evaluating = evaluating
        self._cpus = cpus
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 600.0) -> None:
        """Start it and wait until it answers ``/health``."""
        args = [str(opa_binary()), "run", "--server", "--addr", f"127.0.0.1:{self.port}",
                "--log-level", "error", "--disable-telemetry"]
        if self._directory is not None:
            args.append(str(self._directory))
        env = {**os.environ, "GOGC": _devstack().OPA_GOGC} if self._evaluating else None
        sink = self.log_path or Path(os.devnull)
        with sink.open("wb") as out:
            self._proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True, preexec_fn=pin_to(self._cpus))
        self._wait_healthy(timeout)

    def _wait_healthy(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise SystemExit(f"OPA ({self.name}) exited with {self._proc.returncode} "
                                 "before answering /health")
            if _devstack().opa_healthy(self.port):
                return
            time.sleep(0.1)
        raise SystemExit(f"OPA ({self.name}) did not answer /health within {timeout:.0f} s")

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def cpu_seconds(self) -> float:
        assert self._proc is not None, "not started"
        return cpu_seconds(self._proc.pid)

    def stop(self) -> None:
        terminate(self._proc, 20)
