"""`make run` end to end: embedded servers, migrations, demo login; a worker and the embedded Redis
SIGKILLed and brought back by the supervisor (ready again within RECOVERY_SECONDS); a SIGTERM
stop within STOP_SECONDS even with a frozen API and Postgres, no orphan; data reused."""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from app.dev.embedded import free_port
from tests.services import ROOT

pytestmark = pytest.mark.multiprocess

STARTUP_SECONDS = 90
STOP_SECONDS = 10  # the supervisor's promise, SIGTERM to exit
RESTART_LINE_SECONDS = 5  # a death is noticed and announced within this
RECOVERY_SECONDS = 30  # from the kill to /readyz ready again on a fresh heartbeat
HEARTBEAT_MAX_AGE = 4  # /readyz refuses an older heartbeat; the test relies on it being short


def _get(url: str, body: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _status(url: str) -> int:
    try:
        return _get(url)[0]
    except OSError:
        return 0


class RunningStack:
    """`python -m app.cli run` with its output read as it comes (a full pipe would stall it)."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env |= {
            "ENV": "development",
            "DATA_DIR": str(data_dir),
            "API_PORT": str(self.port),
            "EMBEDDED_PG_PORT": str(free_port()),
            "EMBEDDED_REDIS_PORT": str(free_port()),
            "SANDBOX_PORT": str(free_port()),
            "HEARTBEAT_INTERVAL_SECONDS": "1",
            "HEARTBEAT_MAX_AGE_SECONDS": str(HEARTBEAT_MAX_AGE),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.base = f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float, start: int = 0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[start:]:
                if match := re.search(pattern, line):
                    return match
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r} within {timeout}s:\n{self.output}")

    def wait_ready(self, timeout: float, not_before: float = 0.0) -> float:
        """Seconds until /readyz answers 200 at or after `not_before` (time.monotonic())."""
        began = time.monotonic()
        while time.monotonic() < began + timeout and self.proc.poll() is None:
            if time.monotonic() >= not_before and _status(f"{self.base}/readyz") == 200:
                return time.monotonic() - began
            time.sleep(0.25)
        raise AssertionError(f"not ready within {timeout}s:\n{self.output[-5000:]}")

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children()

    def child(self, *words: str) -> psutil.Process:
        """The supervisor's direct child whose command line has all these words."""
        for proc in self.children():
            cmdline = " ".join(proc.cmdline())
            if all(word in cmdline for word in words):
                return proc
        raise AssertionError(f"no child running {words}")

    def stop(self) -> float:
        """SIGTERM; the seconds until the supervisor exited."""
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_SECONDS + 20)
        finally:
            self._reader.join(5)
        return time.monotonic() - began


def _still_running(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Those not gone after `timeout`. A zombie runs nothing: the children of a SIGKILLed
    Postgres are reparented to init, which reaps them in its own time."""
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    running = []
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            if proc.status() != psutil.STATUS_ZOMBIE:
                running.append(proc)
    return running


def _kill_and_recover(stack: RunningStack, victim: psutil.Process, name: str) -> float:
    """SIGKILL `victim`; assert the restart is announced and /readyz is ready again on a
    heartbeat stamped after the kill. The seconds from the kill to ready."""
    leftovers = victim.children(recursive=True)  # a worker's pool: the supervisor clears them
    seen = len(stack.lines)
    killed_at = time.monotonic()
    victim.kill()

    stack.wait_for_line(
        rf"stack \| ({name}\S*) exited with -9; restarting in 1\.0s \(restart 1\)",
        RESTART_LINE_SECONDS,
        seen,
    )
    stack.wait_for_line(rf"stack \| {name}\S* started again", RESTART_LINE_SECONDS, seen)
    # Ready after the old heartbeat has aged out: only one stamped since the kill is fresh.
    stack.wait_ready(RECOVERY_SECONDS, not_before=killed_at + HEARTBEAT_MAX_AGE + 0.5)
    recovered = time.monotonic() - killed_at
    assert recovered < RECOVERY_SECONDS
    alive = _still_running(leftovers, timeout=2)
    assert alive == [], f"{name}'s leftovers still running: {alive}"
    return recovered


def _run_stack(
    data_dir: Path, during: Callable[[RunningStack], None] | None = None
) -> tuple[str, dict[str, object]]:
    """Start the stack, wait for readiness, log in, run `during`, stop it with SIGTERM within
    STOP_SECONDS leaving nothing behind; (output, login)."""
    stack = RunningStack(data_dir)
    descendants: list[psutil.Process] = []
    try:
        print(f"ready in {stack.wait_ready(STARTUP_SECONDS):.1f}s")
        login_status, login = _get(
            f"{stack.base}/api/v1/auth/login", {"email": "demo@example.com", "password": "demo"}
        )
        assert login_status == 200
        if during is not None:
            during(stack)
        descendants = psutil.Process(stack.proc.pid).children(recursive=True)
        assert len(descendants) >= 9  # postgres, redis, sandbox, api, 4 lane workers (+pools), beat
    finally:
        stopped_in = stack.stop()
    print(f"stopped in {stopped_in:.1f}s")
    assert stack.proc.returncode == 0, stack.output
    assert stopped_in <= STOP_SECONDS, f"stopped in {stopped_in:.1f}s"
    still_alive = _still_running(descendants, timeout=1)
    assert still_alive == [], f"orphans left behind: {still_alive}"
    return stack.output, login


def _faults(stack: RunningStack) -> None:
    """A worker and the Redis killed; then the API and Postgres frozen, so the stop that follows
    has to SIGKILL both at its deadlines and still end within STOP_SECONDS."""
    worker = stack.child("celery", "--queues sync")  # a lane with a process pool
    worker_recovery = _kill_and_recover(stack, worker, "w-sync")
    redis = stack.child("redis-server")
    redis_recovery = _kill_and_recover(stack, redis, "redis")
    print(f"recovered: worker in {worker_recovery:.1f}s, redis in {redis_recovery:.1f}s")
    stack.child("uvicorn", "app.main:asgi").suspend()
    stack.child("postgres", "-D").suspend()


def test_run_heals_stops_in_time_and_reuses_its_data(tmp_path: Path) -> None:
    first_output, first_login = _run_stack(tmp_path, _faults)
    second_output, _ = _run_stack(tmp_path)

    assert first_login["token_type"] == "bearer"
    assert "demo operator demo@example.com created" in first_output
    assert "embedded Postgres" in first_output
    assert "SIGTERM received, stopping everything" in first_output
    assert "api did not stop in time, killing it" in first_output
    assert "postgres did not stop in time, killing it" in first_output
    assert "demo operator demo@example.com already exists" in second_output
    assert "(1 sellers restored)" in second_output  # the sandbox's state file
    tokens = {
        line.split("SANDBOX_DEMO_TOKEN=", 1)[1]
        for line in (first_output + second_output).splitlines()
        if "SANDBOX_DEMO_TOKEN=" in line
    }
    assert len(tokens) == 1
    assert re.search(r"stack \| stopped in \d+\.\ds", second_output)
