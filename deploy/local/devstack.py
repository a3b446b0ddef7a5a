"""Local dev stack: real PostgreSQL, Apache Kafka (KRaft) and OPA on 127.0.0.1.

Two OPA processes: one that workers load pack versions into and evaluate with
(``GAVEL_OPA_URL``), and one that only compile-checks published modules
(``GAVEL_OPA_CHECK_URL``), so that publishing never pays for the worker's modules.

Standard library only, so it runs before the project's virtualenv exists.

    python deploy/local/devstack.py start  [--name dev] [--json]
    python deploy/local/devstack.py stop   [--name dev]
    python deploy/local/devstack.py status [--name dev]
    python deploy/local/devstack.py run    [--name dev] -- COMMAND...   # start, run, stop

Everything downloaded or built lives under ``$GAVEL_CACHE_DIR`` (default
``~/.cache/gavel``); each named stack keeps its data, logs and pids in
``$GAVEL_CACHE_DIR/stacks/NAME``. A server that is already running for the stack is
reused; one left over from a crashed run (dead pid, or alive but not answering) is
cleaned up and started again. If ``GAVEL_DATABASE_URL``,
``GAVEL_KAFKA_BOOTSTRAP_SERVERS``, ``GAVEL_OPA_URL`` or ``GAVEL_OPA_CHECK_URL`` is set,
that external server is used and nothing is started for it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
KAFKA_VERSION = "3.9.1"
OPA_GOGC = "400"
OPA_VERSION = "v1.22.2"
HOST = "127.0.0.1"

ENV_DATABASE = "GAVEL_DATABASE_URL"
ENV_KAFKA = "GAVEL_KAFKA_BOOTSTRAP_SERVERS"
ENV_OPA = "GAVEL_OPA_URL"
ENV_OPA_CHECK = "GAVEL_OPA_CHECK_URL"


class StackError(RuntimeError):
    """A server could not be installed or started; the message says which and why."""


def log(message: str) -> None:
    print(f"devstack: {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    return Path(os.environ.get("GAVEL_CACHE_DIR", Path.home() / ".cache" / "gavel")).expanduser()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"):
        return False
    return True


def kill_group(pid: int | None, grace: float = 10.0) -> None:
    """SIGTERM the process group led by pid, SIGKILL whatever is left after grace."""
    if not pid_alive(pid):
        return
    assert pid is not None
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.1)


def wait_until(check, timeout: float, what: str, logfile: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    tail = ""
    if logfile and logfile.exists():
        tail = "\n" + "\n".join(logfile.read_text(errors="replace").splitlines()[-20:])
    raise StackError(f"{what} did not become ready within {timeout:.0f}s{tail}")


def spawn(cmd: list[str], logfile: Path, env: dict[str, str] | None = None,
          user: str | None = None) -> int:
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with logfile.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
    return proc.pid


def run(cmd: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise StackError(f"{what} failed: `{' '.join(cmd)}` exited {result.returncode}\n"
                         f"{result.stdout}{result.stderr}")
    return result


@dataclass
class StackDir:
    name: str

    @property
    def root(self) -> Path:
        return cache_dir() / "stacks" / self.name

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    def load(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def save(self, state: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    def log(self, service: str) -> Path:
        return self.root / "logs" / f"{service}.log"


# --------------------------------------------------------------------------- postgres

def postgres_bindir() -> Path:
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for found in (shutil.which("pg_ctl"), shutil.which("initdb")):
        if found:
            candidates.append(Path(found).resolve().parent)
    for directory in candidates:
        if (directory / "postgres").exists() and (directory / "initdb").exists():
            return directory
    return Path()


def ensure_postgres_installed() -> Path:
    bindir = postgres_bindir()
    if bindir != Path():
        return bindir
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise StackError("PostgreSQL server binaries not found; install Debian's `postgresql` "
                         "package (apt-get install postgresql) or set GAVEL_DATABASE_URL")
    log("installing PostgreSQL from Debian's packages (once)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], "apt-get update", env=env)
    run(["apt-get", "install", "-y", "-q", "postgresql"], "apt-get install postgresql", env=env)
    bindir = postgres_bindir()
    if bindir == Path():
        raise StackError("PostgreSQL installed but its binaries were not found")
    return bindir


def postgres_user() -> str | None:
    """PostgreSQL refuses to run as root; as root, run it as the `postgres` user."""
    return "postgres" if os.geteuid() == 0 else None


def postgres_datadir(stack: StackDir) -> Path:
    if postgres_user():
        # root's home is not readable by the postgres user
        return Path("/var/lib/gavel") / stack.name / "pgdata"
    return stack.root / "pgdata"


def start_postgres(stack: StackDir, state: dict) -> str:
    bindir = ensure_postgres_installed()
    user = postgres_user()
    datadir = postgres_datadir(stack)
    logfile = stack.log("postgres")
    prev = state.get("postgres", {})
    if pid_alive(prev.get("pid")) and port_open(prev.get("port", 0)):
        return prev["url"]
    if pid_alive(prev.get("pid")):
        log("postgres left over but not answering; stopping it")
        kill_group(prev["pid"])
    if not (datadir / "PG_VERSION").exists():
        datadir.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(datadir, user, user)
            shutil.chown(datadir.parent, user, user)
        run([str(bindir / "initdb"), "-D", str(datadir), "-U", "gavel", "--auth=trust",
             "-E", "UTF8", "--no-locale"], "initdb", **({"user": user} if user else {}))
    (datadir / "postmaster.pid").unlink(missing_ok=True)
    port = prev.get("port") if prev.get("port") and port_free(prev["port"]) else free_port()
    logfile.parent.mkdir(parents=True, exist_ok=True)
    if user:
        logfile.touch()
        shutil.chown(logfile, user, user)
    cmd = [str(bindir / "postgres"), "-D", str(datadir), "-h", HOST, "-p", str(port),
           "-k", str(datadir), "-c", "max_connections=200", "-c", "fsync=off",
           "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
           "-c", "shared_buffers=256MB",
           # the current-state tables churn: vacuumed every few seconds, not each minute,
           # their indexes stay a fifth of the size (README: Deploying)
           "-c", "autovacuum_naptime=5s"]
    pid = spawn(cmd, logfile, user=user)
    wait_until(lambda: port_open(port), 60, "postgres", logfile)
    psql = [str(bindir / "psql"), "-h", HOST, "-p", str(port), "-U", "gavel", "-d", "postgres",
            "-tAc"]
    for _ in range(50):
        probe = subprocess.run([*psql, "select 1"], capture_output=True, text=True)
        if probe.returncode == 0:
            break
        time.sleep(0.2)
    exists = run([*psql, "select 1 from pg_database where datname='gavel'"], "psql").stdout
    if not exists.strip():
        run([*psql, "create database gavel"], "create database")
    url = f"postgresql://gavel@{HOST}:{port}/gavel"
    state["postgres"] = {"pid": pid, "port": port, "url": url}
    return url


def stop_postgres(stack: StackDir, state: dict) -> None:
    info = state.get("postgres", {})
    kill_group(info.get("pid"), grace=15)


# --------------------------------------------------------------------------- kafka

def kafka_libs() -> Path:
    libs = cache_dir() / "kafka" / KAFKA_VERSION / "libs"
    if (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        return libs
    if not shutil.which("mvn"):
        raise StackError("Maven (mvn) is needed to fetch Kafka's jars; install it or set "
                         "GAVEL_KAFKA_BOOTSTRAP_SERVERS")
    log(f"fetching Apache Kafka {KAFKA_VERSION} from Maven Central (once)")
    staging = libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    run(["mvn", "-q", "-B", "-f", str(HERE / "kafka-pom.xml"),
         f"-Dmaven.repo.local={cache_dir() / 'm2'}", f"-Dkafka.version={KAFKA_VERSION}",
         "dependency:copy-dependencies", f"-DoutputDirectory={staging}", "-DincludeScope=runtime"],
        "mvn dependency:copy-dependencies")
    shutil.rmtree(libs, ignore_errors=True)
    staging.replace(libs)
    return libs


# the largest record batch the broker takes on a topic without a max.message.bytes of
# its own (auto-created, or created before Gavel set one): what Gavel's topics allow at
# the default GAVEL_KAFKA_MAX_MESSAGE_BYTES (gavel.kafka.batch_limit)
MESSAGE_MAX_BYTES = 8 * 1024 * 1024 + 16 * 1024


def kafka_properties(stack: StackDir, broker: int, controller: int) -> Path:
    data = stack.root / "kafka-data"
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{controller}",
        "listeners": f"PLAINTEXT://{HOST}:{broker},CONTROLLER://{HOST}:{controller}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{broker}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data),
        "num.partitions": "4",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "log.retention.hours": "168",
        "message.max.bytes": str(MESSAGE_MAX_BYTES),
    }
    path = stack.root / "kafka.properties"
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    log4j = stack.root / "kafka-log4j.properties"
    log4j.write_text(
        "log4j.rootLogger=INFO, stdout\n"
        "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        "log4j.logger.kafka=INFO\nlog4j.logger.org.apache.kafka=WARN\n"
        "log4j.logger.kafka.server.KafkaRaftServer=INFO\n"
    )
    return path


def java_cmd(libs: Path, stack: StackDir, main: str, *args: str) -> list[str]:
    java = shutil.which("java")
    if not java:
        raise StackError("java not found; install a JDK (17+) or set GAVEL_KAFKA_BOOTSTRAP_SERVERS")
    return [java, "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{stack.root / 'kafka-log4j.properties'}",
            "-cp", f"{libs}/*", main, *args]


def start_kafka(stack: StackDir, state: dict) -> str:
    libs = kafka_libs()
    prev = state.get("kafka", {})
    logfile = stack.log("kafka")
    if pid_alive(prev.get("pid")) and port_open(prev.get("port", 0)):
        return prev["bootstrap"]
    if pid_alive(prev.get("pid")):
        log("kafka left over but not answering; stopping it")
        kill_group(prev["pid"])
    broker = prev.get("port") if prev.get("port") and port_free(prev["port"]) else free_port()
    controller = prev.get("controller_port")
    if not controller or not port_free(controller) or controller == broker:
        controller = free_port()
        while controller == broker:
            controller = free_port()
    props = kafka_properties(stack, broker, controller)
    data = stack.root / "kafka-data"
    if not (data / "meta.properties").exists():
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        run(java_cmd(libs, stack, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                     "-c", str(props), "--ignore-formatted"), "kafka storage format")
    (data / ".lock").unlink(missing_ok=True)
    logfile.parent.mkdir(parents=True, exist_ok=True)
    offset = logfile.stat().st_size if logfile.exists() else 0
    pid = spawn(java_cmd(libs, stack, "kafka.Kafka", str(props)), logfile)

    def started() -> bool:
        if not pid_alive(pid):
            raise StackError("kafka exited during start-up:\n" + tail_from(logfile, offset))
        with logfile.open("rb") as fh:
            fh.seek(offset)
            return b"Kafka Server started" in fh.read()

    wait_until(started, 120, "kafka", logfile)
    bootstrap = f"{HOST}:{broker}"
    state["kafka"] = {"pid": pid, "port": broker, "controller_port": controller,
                      "bootstrap": bootstrap}
    return bootstrap


def tail_from(logfile: Path, offset: int) -> str:
    with logfile.open("rb") as fh:
        fh.seek(offset)
        return "\n".join(fh.read().decode(errors="replace").splitlines()[-30:])


# --------------------------------------------------------------------------- opa

def opa_binary() -> Path:
    target = cache_dir() / "opa" / OPA_VERSION
    binary = target / "opa"
    if binary.exists():
        return binary
    if not shutil.which("go"):
        raise StackError("go not found; it builds OPA (go install). "
                         "Install Go or set GAVEL_OPA_URL")
    log(f"building OPA {OPA_VERSION} with go install (once; a few minutes)")
    env = {**os.environ, "GOBIN": str(target), "CGO_ENABLED": "0"}
    env.setdefault("GOMODCACHE", str(cache_dir() / "go" / "mod"))
    env.setdefault("GOCACHE", str(cache_dir() / "go" / "build"))
    run(["go", "install", f"github.com/open-policy-agent/opa@{OPA_VERSION}"], "go install opa",
        env=env)
    return binary


def opa_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def start_opa(stack: StackDir, state: dict, service: str = "opa") -> str:
    binary = opa_binary()
    prev = state.get(service, {})
    if pid_alive(prev.get("pid")) and opa_healthy(prev.get("port", 0)):
        return prev["url"]
    if pid_alive(prev.get("pid")):
        log(f"{service} left over but not answering; stopping it")
        kill_group(prev["pid"])
    port = prev.get("port") if prev.get("port") and port_free(prev["port"]) else free_port()
    logfile = stack.log(service)
    # the evaluating OPA parses every input anew and allocates a great deal for it: a
    # garbage collection every 4x of live heap instead of 2x gave 25-50 % more
    # evaluations/s on 10- and 100-resource inputs here, for about 150 MB more heap
    env = {**os.environ, "GOGC": OPA_GOGC} if service == "opa" else None
    pid = spawn([str(binary), "run", "--server", "--addr", f"{HOST}:{port}",
                 "--log-level", "error", "--disable-telemetry"], logfile, env=env)
    wait_until(lambda: opa_healthy(port), 30, service, logfile)
    url = f"http://{HOST}:{port}"
    state[service] = {"pid": pid, "port": port, "url": url}
    return url


def start_opa_check(stack: StackDir, state: dict) -> str:
    return start_opa(stack, state, "opa-check")


# --------------------------------------------------------------------------- commands

SERVICES = (("postgres", ENV_DATABASE, start_postgres),
            ("kafka", ENV_KAFKA, start_kafka),
            ("opa", ENV_OPA, start_opa),
            ("opa-check", ENV_OPA_CHECK, start_opa_check))


def start(name: str) -> dict[str, str]:
    stack = StackDir(name)
    stack.root.mkdir(parents=True, exist_ok=True)
    state = stack.load()
    env: dict[str, str] = {}
    began = time.monotonic()
    for service, variable, starter in SERVICES:
        if os.environ.get(variable):
            env[variable] = os.environ[variable]
            log(f"{service}: using external {variable}")
            continue
        env[variable] = starter(stack, state)
        stack.save(state)
        log(f"{service}: {env[variable]}")
    log(f"stack '{name}' ready in {time.monotonic() - began:.1f}s")
    return env


def stop(name: str) -> None:
    stack = StackDir(name)
    state = stack.load()
    for service in ("opa-check", "opa", "kafka", "postgres"):
        info = state.get(service, {})
        if pid_alive(info.get("pid")):
            log(f"stopping {service} (pid {info['pid']})")
        kill_group(info.get("pid"), grace=20)
        info.pop("pid", None)
    stack.save(state)


def status(name: str) -> dict[str, dict]:
    state = StackDir(name).load()
    report = {}
    for service, _, _ in SERVICES:
        info = state.get(service, {})
        report[service] = {"running": pid_alive(info.get("pid")), **info}
    return report


def run_with_stack(name: str, command: list[str]) -> int:
    env = start(name)
    child = subprocess.Popen(command, env={**os.environ, **env})

    def forward(signum: int, _frame) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    try:
        return child.wait()
    finally:
        stop(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status", "run", "env"])
    parser.add_argument("--name", default=os.environ.get("GAVEL_STACK_NAME", "dev"))
    parser.add_argument("--json", action="store_true", help="print the settings as JSON")
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    try:
        if args.command in ("start", "env"):
            env = start(args.name)
            if args.json:
                print(json.dumps(env))
            else:
                print("".join(f"export {k}={v}\n" for k, v in env.items()), end="")
        elif args.command == "stop":
            stop(args.name)
        elif args.command == "status":
            print(json.dumps(status(args.name), indent=2))
        else:
            if not command:
                parser.error("run needs a command after --")
            return run_with_stack(args.name, command)
    except StackError as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
