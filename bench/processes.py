"""Gavel programs (``python -m gavel.cli api|worker``) as separate OS processes, so the
load generator does not take their CPU; with their peak memory and CPU time, and
optionally sampled by py-spy."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (its state first)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2:].split()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the one process ``pid`` has used so far (not its
    children's: a Postgres backend is the server's own process)."""
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Metered(Protocol):
    """A process whose CPU a benchmark reads by name while it runs."""

    name: str

    def alive(self) -> bool: ...

    def cpu_seconds(self) -> float: ...


def parse_cpus(text: str) -> frozenset[int]:
    """A CPU list as ``taskset -c`` takes it (``"2"``, ``"2-3"``, ``"0,4-5"``)."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise ValueError(f"not a CPU list: {text!r} (e.g. 2, 2-3 or 0,4-5)") from None
        if high < low:
            raise ValueError(f"not a CPU list: {text!r} ({part} runs backwards)")
        cpus.update(range(low, high + 1))
    return frozenset(cpus)


def pin_to(cpus: frozenset[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that holds the child to ``cpus`` from its first instruction
    (OPA's Go runtime sizes its scheduler to them at start); None for no limit."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def terminate(proc: subprocess.Popen[bytes] | None, grace: float) -> None:
    """SIGTERM a running child, and SIGKILL it if it has not exited after ``grace`` s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class GavelProcess:
    def __init__(self, role: str, env: dict[str, str], log_path: Path,
                 name: str | None = None, cpus: frozenset[int] | None = None) -> None:
        self.role = role
        self.name = name or role
        self.log_path = log_path
        self.cpus = cpus
        self._env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self._proc: subprocess.Popen[bytes] | None = None
        self._profiler: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen([sys.executable, "-m", "gavel.cli", self.role],
                                          env=self._env, stdout=log, stderr=subprocess.STDOUT,
                                          preexec_fn=pin_to(self.cpus))

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def peak_memory_mib(self) -> float:
        """VmHWM (peak resident set) of the running process, in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used so far."""
        return cpu_seconds(self.pid)

    def start_profile(self, output: Path) -> None:
        """Sample the process with py-spy (speedscope format) until ``stop_profile``."""
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self._profiler = subprocess.Popen(
            [py_spy, "record", "--pid", str(self.pid), "--rate", "200",
             "--format", "speedscope", "--output", str(output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop_profile(self) -> None:
        if self._profiler is not None:
            self._profiler.send_signal(signal.SIGINT)
            self._profiler.wait(timeout=60)
            self._profiler = None

    def stop(self, grace: float = 30.0) -> None:
        self.stop_profile()
        terminate(self._proc, grace)

    def tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def load_average() -> str:
    """The machine's 1-, 5- and 15-minute load averages (other work shares it)."""
    return " / ".join(f"{load:.1f}" for load in os.getloadavg())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
