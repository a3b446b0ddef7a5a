"""The API (with its outbox relay) and workers as separate processes on the scratch
database and topics; logs in the temp directory, named after the scratch database."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from bench.opa_server import OpaServer
from bench.processes import GavelProcess, Metered, free_port
from bench.worker_process import WorkerProcess
from gavel.kafka import ensure_topics
from gavel.settings import Settings

READY_TIMEOUT = 60.0


class Services:
    def __init__(self, settings: Settings, env: dict[str, str],
                 profile_dir: Path | None = None) -> None:
        self._env = env
        self._profile_dir = profile_dir
        self._name = urlsplit(settings.database.url).path.lstrip("/")
        self.api: GavelProcess | None = None
        self.base_url = ""
        self.workers: list[WorkerProcess] = []
        self.sidecars: list[OpaServer] = []
        self._started_workers = 0

    def processes(self) -> list[Metered]:
        """The API and worker processes started so far, and the workers' own OPAs."""
        return [*self._gavel_processes(), *self.sidecars]

    def _gavel_processes(self) -> list[GavelProcess]:
        """The API and worker processes started so far (``gavel api``, ``gavel worker``)."""
        return [p for p in (self.api, *self.workers) if p is not None]

    def _log(self, role: str) -> Path:
        return Path(tempfile.gettempdir()) / f"{self._name}-{role}.log"

    async def start_api(self) -> str:
        """Start ``gavel api`` on a free loopback port; return its base URL when ready."""
        port = free_port()
        env = {**self._env, "GAVEL_HTTP_HOST": "127.0.0.1", "GAVEL_HTTP_PORT": str(port)}
        self.api = GavelProcess("api", env, self._log("api"))
        self.api.start()
        self.base_url = f"http://127.0.0.1:{port}"
        await self._wait_ready()
        return self.base_url

    async def _wait_ready(self) -> None:
        assert self.api is not None
        deadline = time.monotonic() + READY_TIMEOUT
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                self.check_alive()
                try:
                    async with session.get(f"{self.base_url}/readyz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise SystemExit(f"the API was not ready after {READY_TIMEOUT:.0f}s; "
                         f"see {self.api.log_path}")

    def start_workers(self, count: int, *, own_opa: bool = False,
                      cpu_sets: Sequence[frozenset[int]] = ()) -> list[WorkerProcess]:
        """Start ``count`` workers. ``own_opa``: each with an OPA of its own (as the
        Kubernetes manifest runs one beside each worker) instead of the stack's.
        ``cpu_sets`` (one per worker, or none): the i-th worker, and its own OPA, held to
        the i-th set."""
        started = []
        for index in range(count):
            self._started_workers += 1
            name = f"worker-{self._started_workers}"
            cpus = cpu_sets[index] if cpu_sets else None
            env = self._env
            if own_opa:
                sidecar = OpaServer(f"opa-{name}", evaluating=True, cpus=cpus,
                                    log_path=self._log(f"opa-{name}"))
                sidecar.start(READY_TIMEOUT)
                self.sidecars.append(sidecar)
                env = {**env, "GAVEL_OPA_URL": sidecar.url}
            worker = WorkerProcess(env, self._log(name), name, cpus)
            worker.start()
            started.append(worker)
        self.workers.extend(started)
        return started

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []
        for sidecar in self.sidecars:
            sidecar.stop()
        self.sidecars = []

    def check_alive(self) -> None:
        """Stop the benchmark, naming the log, if a process it started has exited."""
        for proc in self._gavel_processes():
            if not proc.alive():
                raise SystemExit(f"the {proc.role} process exited; see {proc.log_path}:\n"
                                 f"{proc.tail()}")
        for sidecar in self.sidecars:
            if not sidecar.alive():
                raise SystemExit(f"{sidecar.name} exited; see {sidecar.log_path}")

    @contextmanager
    def profiled(self, label: str) -> Iterator[None]:
        """Sample the API and every worker with py-spy meanwhile, when asked to."""
        running = self._gavel_processes()
        if self._profile_dir is None:
            yield
            return
        self._profile_dir.mkdir(parents=True, exist_ok=True)
        for proc in running:
            proc.start_profile(self._profile_dir / f"{label}-{proc.name}.speedscope.json")
        try:
            yield
        finally:
            for proc in running:
                proc.stop_profile()

    def stop(self) -> None:
        self.stop_workers()
        if self.api is not None:
            self.api.stop()

    def log_paths(self) -> str:
        return str(Path(tempfile.gettempdir()) / f"{self._name}-*.log")


@asynccontextmanager
async def services(settings: Settings, env: dict[str, str],
                   profile_dir: str | None = None) -> AsyncIterator[Services]:
    """Topics created; every process started through the yielded object is stopped."""
    await ensure_topics(settings.kafka)
    running = Services(settings, env, Path(profile_dir) if profile_dir else None)
    try:
        yield running
    finally:
        running.stop()
