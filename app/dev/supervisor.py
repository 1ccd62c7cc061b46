"""`make run`: embedded services (unless URLs are given), migrations, demo operator, then the API,
workers, beat and the sandbox in the foreground, with one prefixed log stream.

A child that dies is started again after a backoff (1 s, doubling up to 30 s, back to 1 s once it
has stayed up 30 s), with a log line; one dead child never stops the stack. The embedded Postgres
and Redis come back on the same data dir and port, so the URLs the others hold stay valid, and
the sandbox reloads its state file, so its demo seller and token stay the same.

Ctrl-C or SIGTERM stops everything within STOP_SECONDS: the handler only records the signal (the
wakeup fd wakes the main loop); the main loop then sends SIGTERM to every child at once, SIGKILL
to those still there at the deadline, and does the same to the services last. Nothing the main
loop or a signal can reach blocks on stdout: one writer thread owns it.
"""

import contextlib
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from app.core.config import get_settings
from app.dev.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    EmbeddedServiceError,
    die_with_parent,
)
from app.worker import lanes

API_HOST = "127.0.0.1"
EMBEDDED_PG_PORT = int(os.environ.get("EMBEDDED_PG_PORT", "54329"))
EMBEDDED_REDIS_PORT = int(os.environ.get("EMBEDDED_REDIS_PORT", "63799"))
SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "8100"))
SANDBOX_TOKEN_PREFIX = "SANDBOX_DEMO_TOKEN="  # noqa: S105 - a line marker, not a secret
SANDBOX_STATE_FILE = "sandbox-state.json"

# SIGINT/SIGTERM to exit, whatever the children do: the API, workers, beat and sandbox get
# SIGTERM and until CHILDREN_STOP_SECONDS, the services until SERVICES_STOP_SECONDS; SIGKILL
# then, and up to KILL_WAIT_SECONDS each for the kernel to reap; what is left is margin.
STOP_SECONDS = 10.0
CHILDREN_STOP_SECONDS = 6.0
SERVICES_STOP_SECONDS = 8.0
KILL_WAIT_SECONDS = 0.5
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
STABLE_SECONDS = 30.0  # up this long: the next restart waits BACKOFF_FIRST_SECONDS again
TICK_SECONDS = 0.25
LOG_BACKLOG_LINES = 10_000

COLORS = {"api": "36", "worker": "35", "beat": "33", "stack": "32", "sandbox": "34"}


class _Console:
    """The only writer of stdout. Lines wait in a bounded queue: children's output blocks its
    pump thread when the queue is full (as a full pipe would); the supervisor's own lines are
    dropped instead, so the main loop never waits on a reader."""

    def __init__(self) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue(LOG_BACKLOG_LINES)
        self._writer: threading.Thread | None = None
        self._start = threading.Lock()
        self._tty = sys.stdout.isatty()

    def say(self, name: str, line: str, *, wait: bool) -> None:
        self._ensure_writer()
        color = COLORS.get(name, "0") if self._tty else None
        prefix = f"\033[{color}m{name:>8} |\033[0m" if color else f"{name:>8} |"
        with contextlib.suppress(queue.Full):
            self._lines.put(f"{prefix} {line}\n", block=wait)

    def flush(self, timeout: float) -> None:
        """Write what is queued (at most `timeout` seconds), then stop the writer."""
        if self._writer is None:
            return
        with contextlib.suppress(queue.Full):
            self._lines.put(None, timeout=timeout)
        self._writer.join(timeout)
        self._writer = None

    def _ensure_writer(self) -> None:
        with self._start:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write, daemon=True, name="console")
                self._writer.start()

    def _write(self) -> None:
        while (line := self._lines.get()) is not None:
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.write(line)
                sys.stdout.flush()


_console = _Console()


def say(name: str, line: str) -> None:
    """One prefixed line on stdout, later; never blocks the caller."""
    _console.say(name, line, wait=False)


@dataclass
class Backoff:
    """When a dead process starts again: BACKOFF_FIRST_SECONDS, doubling to the cap; a process
    that had stayed up STABLE_SECONDS starts over at the first delay."""

    delay: float = BACKOFF_FIRST_SECONDS
    restarts: int = 0
    started_at: float = 0.0  # time.monotonic()
    due_at: float | None = None  # dead, to be started at this time

    def started(self, now: float) -> None:
        self.started_at = now
        self.due_at = None

    def died(self, now: float) -> float:
        if now - self.started_at >= STABLE_SECONDS:
            self.delay = BACKOFF_FIRST_SECONDS
        wait = self.delay
        self.delay = min(self.delay * 2, BACKOFF_MAX_SECONDS)
        self.restarts += 1
        self.due_at = now + wait
        return wait


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = field(default=None, repr=False)
    lines: list[str] = field(default_factory=list, repr=False)  # kept until `ready` is set
    ready: threading.Event = field(default_factory=threading.Event, repr=False)
    ready_marker: str | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    env: dict[str, str] = field(default_factory=dict, repr=False)  # what a restart gets
    backoff: Backoff = field(default_factory=Backoff, repr=False)

    def start(self, env: dict[str, str]) -> None:
        self.env = dict(env)
        self.proc = subprocess.Popen(  # noqa: S603 - our own fixed argv
            self.argv,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: we decide the shutdown order
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        self.backoff.started(time.monotonic())
        self.pump = threading.Thread(target=self._pump, daemon=True, name=f"pump-{self.name}")
        self.pump.start()

    def _pump(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if self.ready_marker and not self.ready.is_set() and line.startswith(self.ready_marker):
                self.lines.append(line)
                self.ready.set()
            _console.say(self.name, line, wait=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    def terminate(self) -> None:
        """Ask the whole process group (a Celery worker's pool included) to stop."""
        self._signal_group(self.stop_signal)

    def kill(self) -> None:
        """SIGKILL whatever is left of the process group: also the orphans of a dead child."""
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: int) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)


@dataclass
class Service(Child):
    """An embedded Postgres or Redis under supervision: restarted on its data dir and port."""

    server: EmbeddedPostgres | EmbeddedRedis | None = None

    def start(self, env: dict[str, str]) -> None:
        assert self.server is not None
        self.proc = self.server.launch()
        self.backoff.started(time.monotonic())

    def terminate(self) -> None:
        # The server alone: it stops its own backends (Postgres' "fast" shutdown is SIGINT).
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(self.stop_signal)


class Stack:
    def __init__(self) -> None:
        self.settings = get_settings()
        self.data = Path(self.settings.data_dir).resolve()
        self.postgres: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None
        self.services: list[Service] = []  # stopped last
        self.children: list[Child] = []
        self.signal_received: int | None = None
        self.starting = True
        self._wake_r, self._wake_w = socket.socketpair()

    def run(self) -> int:
        for sock in (self._wake_r, self._wake_w):
            sock.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        try:
            env = self._start_services()
            self._prepare(env)
            self._start_children(env)
            self._banner()
            self.starting = False
            return self._watch()
        except KeyboardInterrupt:
            return 130
        finally:
            self.starting = False
            self._shutdown()
            _console.flush(1.0)

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        # Only a flag (the wakeup fd has already woken the main loop): no lock, no I/O here.
        if self.signal_received is not None:
            return
        self.signal_received = signum
        if self.starting:  # still starting up: unwind through the finally block
            raise KeyboardInterrupt

    def _start_services(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("LOG_FORMAT", "console")
        if not self.settings.database_url:
            say("stack", f"DATABASE_URL not set: embedded Postgres under {self.data / 'postgres'}")
            self.postgres = EmbeddedPostgres(self.data / "postgres", EMBEDDED_PG_PORT)
            self._supervise("postgres", self.postgres, signal.SIGINT)
            env["DATABASE_URL"] = self.postgres.start()
        if not self.settings.redis_url:
            say("stack", f"REDIS_URL not set: embedded Redis under {self.data / 'redis'}")
            self.redis = EmbeddedRedis(self.data / "redis", EMBEDDED_REDIS_PORT)
            self._supervise("redis", self.redis, signal.SIGTERM)
            env["REDIS_URL"] = self.redis.start()
        return env

    def _supervise(
        self, name: str, server: EmbeddedPostgres | EmbeddedRedis, stop: signal.Signals
    ) -> None:
        """Listed before it starts, so a stop during its start still reaches it."""
        service = Service(name, [], stop_signal=stop, server=server)
        self.services.append(service)
        service.backoff.started(time.monotonic())

    def _prepare(self, env: dict[str, str]) -> None:
        say("stack", "migrating the database to head")
        _run_step([sys.executable, "-m", "alembic", "upgrade", "head"], env)
        if self.settings.env != "development":
            return
        demo = [sys.executable, "-m", "app.cli", "create-demo"]
        if "WB_FEEDBACKS_BASE_URL" not in os.environ:  # no real marketplace given: the sandbox
            demo += ["--wb-token", self._start_sandbox(env)]
        _run_step(demo, env)

    def _start_sandbox(self, env: dict[str, str]) -> str:
        """Start the marketplace sandbox with a demo seller; point the connectors at it and let
        them (only them) reach it."""
        sandbox = Child(
            "sandbox",
            [sys.executable, "-m", "app.sandbox", "--host", API_HOST,
             "--port", str(SANDBOX_PORT), "--demo",
             "--state-file", str(self.data / SANDBOX_STATE_FILE)],
            ready_marker=SANDBOX_TOKEN_PREFIX,
        )  # fmt: skip
        self.children.append(sandbox)
        sandbox.start(env)
        if not sandbox.ready.wait(60):
            raise RuntimeError("the sandbox did not print its demo token within 60 s")
        url = f"http://{API_HOST}:{SANDBOX_PORT}"
        for name in ("WB_FEEDBACKS_BASE_URL", "WB_BUYER_CHAT_BASE_URL", "WB_STATISTICS_BASE_URL"):
            env[name] = url
        allowed = [*self.settings.egress_allow_marketplace, url]
        env["EGRESS_ALLOW_MARKETPLACE"] = ",".join(allowed)
        say("stack", f"marketplace sandbox on {url} (admin: {url}/docs)")
        return sandbox.lines[0].removeprefix(SANDBOX_TOKEN_PREFIX).strip()

    def _start_children(self, env: dict[str, str]) -> None:
        py = sys.executable
        schedule = str(self.data / "celerybeat-schedule")
        self.data.mkdir(parents=True, exist_ok=True)
        services = [
            Child("api", [py, "-m", "uvicorn", "--factory", "app.main:asgi",
                          "--host", API_HOST, "--port", str(self.settings.api_port),
                          "--no-access-log"]),
            # A worker per lane (app/worker/lanes.py): heavy work never delays control tasks.
            *(Child(lane.node, lanes.worker_argv(lane, python=py)) for lane in lanes.LANES),
            Child("beat", [py, "-m", "celery", "-A", "app.worker.celery_app", "beat",
                           "--loglevel", "INFO", "--schedule", schedule]),
        ]  # fmt: skip
        for child in services:
            child.start(env)
            self.children.append(child)

    def _banner(self) -> None:
        base = f"http://{API_HOST}:{self.settings.api_port}"
        for line in (
            f"API        {base}   (docs: {base}/docs, readiness: {base}/readyz)",
            f"Inbox      GET {base}/api/v1/interactions?limit=5  (after login, bearer token)",
            "Login      demo@example.com / demo   (POST /api/v1/auth/login)",
            "Stop       Ctrl-C (stops the API, workers, beat, sandbox and the embedded servers)",
        ):
            say("stack", line)

    def _adopt_services(self) -> None:
        """The servers' processes, also when their first start was interrupted."""
        for service in self.services:
            assert service.server is not None
            service.proc = service.server.proc

    def _watch(self) -> int:
        self._adopt_services()
        while self.signal_received is None:
            now = time.monotonic()
            for child in [*self.services, *self.children]:
                self._tend(child, now)
            self._sleep(TICK_SECONDS)
        return 0

    def _tend(self, child: Child, now: float) -> None:
        """Notice a death (and clear its leftovers), or start a dead child whose time has come."""
        if child.alive():
            return
        backoff = child.backoff
        if backoff.due_at is None:
            child.kill()  # e.g. the pool processes of a SIGKILLed Celery worker
            wait = backoff.died(now)
            say(
                "stack",
                f"{child.name} exited with {child.exit_code}; "
                f"restarting in {wait:.1f}s (restart {backoff.restarts})",
            )
        elif now >= backoff.due_at:
            try:
                child.start(child.env)
            except (OSError, EmbeddedServiceError) as exc:
                backoff.started(now)  # counts as a start that died at once
                say("stack", f"{child.name} could not start: {exc}")
            else:
                pid = child.proc.pid if child.proc else None
                say("stack", f"{child.name} started again (pid {pid})")

    def _sleep(self, seconds: float) -> None:
        """Until the timeout or a signal, whichever comes first."""
        with contextlib.suppress(InterruptedError):
            select.select([self._wake_r], [], [], seconds)
        with contextlib.suppress(BlockingIOError, OSError):
            while self._wake_r.recv(64):
                pass

    def _shutdown(self) -> None:
        began = time.monotonic()
        if self.signal_received is not None:
            name = signal.Signals(self.signal_received).name
            say("stack", f"{name} received, stopping everything…")
        self._adopt_services()
        _stop_all(self.children, began + CHILDREN_STOP_SECONDS)
        _stop_all(self.services, began + SERVICES_STOP_SECONDS)
        say("stack", f"stopped in {time.monotonic() - began:.1f}s")


def _run_step(argv: list[str], env: dict[str, str]) -> None:
    """A one-shot step of the start-up; interrupted, it is killed and reaped, not left behind
    (subprocess.run waits only a quarter of a second after a KeyboardInterrupt)."""
    proc = subprocess.Popen(argv, env=env)  # noqa: S603 - our own argv
    try:
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if code != 0:
        raise subprocess.CalledProcessError(code, argv)


def _stop_all(children: Sequence[Child], deadline: float) -> None:
    """SIGTERM (or the child's stop signal) to all at once, SIGKILL at the deadline."""
    for child in children:
        child.terminate()
    while any(c.alive() for c in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    for child in children:
        if child.alive():
            say("stack", f"{child.name} did not stop in time, killing it")
        child.kill()  # also whatever the child left behind in its process group
    end = time.monotonic() + KILL_WAIT_SECONDS
    while any(c.alive() for c in children) and time.monotonic() < end:
        time.sleep(0.02)
    for child in children:
        if child.pump is not None:
            child.pump.join(max(0.0, end - time.monotonic()))


def main() -> int:
    return Stack().run()
