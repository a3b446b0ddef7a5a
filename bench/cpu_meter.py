"""CPU time of every process a benchmark drives: the servers of the dev stack (found
by the loopback port they listen on), the API and worker processes, and the load
generator itself. Shares of a core over a phase show which one is the limit. On a
virtual machine the host may run other guests on the cores meanwhile: the time it
took from this one (steal, in ``/proc/stat``) is shown as well, since a phase that
lost more of it ran slower for that alone."""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

from bench.processes import CLOCK_TICKS, Metered, stat_fields
from bench.report import Report
from gavel.settings import Settings

_LISTEN = "0A"
STOLEN = "stolen by the host"


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    return inodes


def listening_pid(port: int) -> int | None:
    """The process listening on ``port`` (None if not found or not readable)."""
    inodes = _listening_inodes(port)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        if any(_link(fd) in inodes for fd in fds):
            return int(proc.name)
    return None


def _link(fd: Path) -> str | None:
    # a busy process (the broker) closes descriptors while they are being read
    try:
        return os.readlink(fd)
    except OSError:
        return None


def tree_cpu_seconds(pid: int) -> float:
    """CPU of ``pid``, its live children (Postgres backends) and its reaped children."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = stat_fields(int(proc.name))
        except OSError:
            continue
        if int(proc.name) == pid:
            total += sum(int(f) for f in fields[11:15])
        elif int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def stolen_seconds() -> float:
    """CPU time the host has taken from this machine's cores since boot."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / CLOCK_TICKS if len(fields) > 8 else 0.0


class CpuMeter:
    def __init__(self, settings: Settings,
                 processes: Callable[[], Iterable[Metered]]) -> None:
        ports = {"postgres": urlsplit(settings.database.url).port,
                 "kafka": int(settings.kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)[1]),
                 "opa": urlsplit(settings.opa.url).port}
        if settings.opa.checks_url != settings.opa.url:
            ports["opa-check"] = urlsplit(settings.opa.checks_url).port
        self._servers = {name: listening_pid(port) for name, port in ports.items() if port}
        self._processes = processes

    def sample(self) -> dict[str, float]:
        """CPU seconds so far, by process name."""
        seconds = {name: tree_cpu_seconds(pid) for name, pid in self._servers.items() if pid}
        for proc in self._processes():
            if proc.alive():
                seconds[proc.name] = proc.cpu_seconds()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        seconds["load generator"] = usage.ru_utime + usage.ru_stime
        seconds[STOLEN] = stolen_seconds()
        return seconds


def add_cpu_shares(report: Report, label: str, before: dict[str, float],
                   after: dict[str, float], wall_seconds: float) -> None:
    """One row per process: its share of one core between the two samples."""
    for name in sorted(set(before) & set(after)):
        report.add(f"{label} CPU {name}", 100 * (after[name] - before[name]) / wall_seconds,
                   "% of a core")
