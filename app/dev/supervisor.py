"""`make run`: embedded services (unless URLs are given), migrations, demo operator, then the API,
a worker and beat in the foreground. Ctrl-C or SIGTERM stops them all, services last."""

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from app.config import get_settings
from app.dev.embedded import EmbeddedPostgres, EmbeddedRedis, die_with_parent
from app.worker import lanes

API_HOST = "127.0.0.1"
EMBEDDED_PG_PORT = int(os.environ.get("EMBEDDED_PG_PORT", "54329"))
EMBEDDED_REDIS_PORT = int(os.environ.get("EMBEDDED_REDIS_PORT", "63799"))
SANDBOX_PORT = int(os.environ.get("SANDBOX_PORT", "8100"))
SANDBOX_TOKEN_PREFIX = "SANDBOX_DEMO_TOKEN="  # noqa: S105 - a line marker, not a secret
STOP_TIMEOUT_SECONDS = 15

COLORS = {"api": "36", "worker": "35", "beat": "33", "stack": "32", "sandbox": "34"}


def say(name: str, line: str) -> None:
    color = COLORS.get(name, "0") if sys.stdout.isatty() else None
    prefix = f"\033[{color}m{name:>6} |\033[0m" if color else f"{name:>6} |"
    sys.stdout.write(f"{prefix} {line}\n")
    sys.stdout.flush()


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = field(default=None, repr=False)
    lines: list[str] = field(default_factory=list, repr=False)  # kept until `ready` is set
    ready: threading.Event = field(default_factory=threading.Event, repr=False)
    ready_marker: str | None = None

    def start(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own fixed argv
            self.argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: we decide the shutdown order
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if self.ready_marker and not self.ready.is_set() and line.startswith(self.ready_marker):
                self.lines.append(line)
                self.ready.set()
            say(self.name, line)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            say("stack", f"{self.name} did not stop in {STOP_TIMEOUT_SECONDS}s, killing it")
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.pump is not None:
            self.pump.join(2)


class Stack:
    def __init__(self) -> None:
        self.settings = get_settings()
        self.data = Path(self.settings.data_dir).resolve()
        self.postgres: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None
        self.children: list[Child] = []
        self.stopping = threading.Event()
        self.watching = False

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        try:
            env = self._start_services()
            self._prepare(env)
            self._start_children(env)
            self._banner()
            self.watching = True
            return self._watch()
        except KeyboardInterrupt:
            return 130
        finally:
            self._shutdown()

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        say("stack", f"{signal.Signals(signum).name} received, stopping everything…")
        if not self.watching:  # still starting up: unwind through the finally block
            raise KeyboardInterrupt

    def _start_services(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("LOG_FORMAT", "console")
        if not self.settings.database_url:
            say("stack", f"DATABASE_URL not set: embedded Postgres under {self.data / 'postgres'}")
            self.postgres = EmbeddedPostgres(self.data / "postgres", EMBEDDED_PG_PORT)
            env["DATABASE_URL"] = self.postgres.start()
        if not self.settings.redis_url:
            say("stack", f"REDIS_URL not set: embedded Redis under {self.data / 'redis'}")
            self.redis = EmbeddedRedis(self.data / "redis", EMBEDDED_REDIS_PORT)
            env["REDIS_URL"] = self.redis.start()
        return env

    def _prepare(self, env: dict[str, str]) -> None:
        say("stack", "migrating the database to head")
        subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], env=env, check=True)
        if self.settings.env != "development":
            return
        demo = [sys.executable, "-m", "app.cli", "create-demo"]
        if "WB_FEEDBACKS_BASE_URL" not in os.environ:  # no real marketplace given: the sandbox
            demo += ["--wb-token", self._start_sandbox(env)]
        subprocess.run(demo, env=env, check=True)  # noqa: S603 - our own argv

    def _start_sandbox(self, env: dict[str, str]) -> str:
        """Start the marketplace sandbox with a demo seller; point the connectors at it and let
        them (only them) reach it."""
        sandbox = Child(
            "sandbox",
            [sys.executable, "-m", "app.sandbox", "--host", API_HOST,
             "--port", str(SANDBOX_PORT), "--demo"],
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
            "Stop       Ctrl-C (stops the API, worker, beat and the embedded servers)",
        ):
            say("stack", line)

    def _watch(self) -> int:
        while not self.stopping.is_set():
            for child in self.children:
                if not child.alive():
                    code = child.proc.returncode if child.proc else -1
                    say("stack", f"{child.name} exited with {code}; stopping the rest")
                    return 1
            time.sleep(0.5)
        return 0

    def _shutdown(self) -> None:
        for child in self.children[::-1]:  # api/worker/beat before the sandbox they call
            child.stop()
        if self.redis:
            self.redis.stop()
        if self.postgres:
            self.postgres.stop()
        say("stack", "stopped")


def main() -> int:
    return Stack().run()
