"""Worker and OPA as separate OS processes, for tests that kill or restart them.

Each process writes its output to a log file; ``tail`` gives the end of it for
assertion messages. ``stop`` is safe to call on a process that already exited.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from gavel.kafka import TOPIC_FIELDS
from gavel.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
OPA_BINARY = Path(os.environ.get("GAVEL_CACHE_DIR", Path.home() / ".cache" / "gavel")
                  ).expanduser() / "opa" / "v1.22.2" / "opa"


def worker_env(settings: Settings, opa_url: str | None = None) -> dict[str, str]:
    """The environment of ``gavel worker`` for these settings (no inherited GAVEL_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAVEL_")}
    kafka = settings.kafka
    env.update({
        "GAVEL_DATABASE_URL": settings.database.url,
        "GAVEL_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        **{f"GAVEL_KAFKA_{field.upper()}": getattr(kafka, field) for field in TOPIC_FIELDS},
        "GAVEL_KAFKA_CONSUMER_GROUP": kafka.consumer_group,
        "GAVEL_OPA_URL": opa_url or settings.opa.url,
        "GAVEL_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    })
    return env


class LoggedProcess:
    """A child process whose stdout and stderr go to ``log_path``."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None
                 ) -> None:
        self.args = args
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env, cwd=ROOT, start_new_session=True)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing is committed on the way out."""
        self.signal(signal.SIGKILL)

    def signal(self, sig: signal.Signals, timeout: float = 30) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        self.signal(signal.SIGTERM, timeout=20)

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return f"--- {self.log_path.name} ---\n" + "\n".join(text[-lines:])


def worker_process(settings: Settings, log_path: Path, opa_url: str | None = None
                   ) -> LoggedProcess:
    return LoggedProcess([sys.executable, "-m", "gavel.cli", "worker"], log_path,
                         worker_env(settings, opa_url))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def opa_process(port: int, log_path: Path) -> LoggedProcess:
    return LoggedProcess([str(OPA_BINARY), "run", "--server", "--addr", f"127.0.0.1:{port}"],
                         log_path)


async def opa_healthy(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(
                f"{url}/health", timeout=aiohttp.ClientTimeout(total=2)) as resp:
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 120,
                     describe: Callable[[], str] = lambda: "", interval: float = 0.05) -> None:
    """Poll ``check`` until true; fail naming ``what`` (and ``describe()``) after timeout."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n"
                                 f"{describe()}")
        await asyncio.sleep(interval)
