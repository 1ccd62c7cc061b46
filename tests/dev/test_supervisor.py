"""The supervisor's parts on real (tiny) processes: backoff, restart of a dead child, the stop."""

import signal
import sys
import time

import psutil
import pytest

from app.dev import supervisor
from app.dev.supervisor import Backoff, Child, Stack

POLITE = "import time; print('up', flush=True); time.sleep(60)"
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('up', flush=True); time.sleep(60)"
)


def _child(name: str, code: str) -> Child:
    child = Child(name, [sys.executable, "-c", code], ready_marker="up")
    child.start({})
    assert child.ready.wait(20)
    return child


def _logged(capsys: pytest.CaptureFixture[str]) -> str:
    supervisor._console.flush(2)
    return capsys.readouterr().out


def test_backoff_doubles_to_the_cap_and_starts_over_after_a_stable_run() -> None:
    backoff = Backoff()
    backoff.started(0.0)

    waits = []
    for _ in range(7):
        waits.append(backoff.died(1.0))
        backoff.started(1.0)
    after_a_stable_run = backoff.died(1.0 + supervisor.STABLE_SECONDS)

    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert after_a_stable_run == 1.0
    assert backoff.restarts == 8


@pytest.mark.multiprocess
def test_a_dead_child_is_restarted_after_its_backoff(capsys: pytest.CaptureFixture[str]) -> None:
    stack = Stack()
    child = _child("sleeper", POLITE)
    first = child.proc
    assert first is not None
    try:
        first.kill()
        first.wait(5)
        now = time.monotonic()

        stack._tend(child, now)  # noticed: scheduled, not started yet
        assert child.proc is first
        stack._tend(child, now + 0.5)
        assert child.proc is first
        stack._tend(child, now + 1.0)

        assert child.proc is not first
        assert child.alive()
        log = _logged(capsys)
        assert "sleeper exited with -9; restarting in 1.0s (restart 1)" in log
        assert f"sleeper started again (pid {child.proc.pid})" in log
    finally:
        supervisor._stop_all([child], time.monotonic() + 5)


@pytest.mark.multiprocess
def test_the_stop_kills_what_ignores_sigterm_at_the_deadline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    polite, stubborn = _child("polite", POLITE), _child("stubborn", STUBBORN)
    procs = [psutil.Process(c.proc.pid) for c in (polite, stubborn) if c.proc]

    began = time.monotonic()
    supervisor._stop_all([polite, stubborn], began + 1.0)
    took = time.monotonic() - began

    assert not polite.alive()
    assert not stubborn.alive()
    assert 1.0 <= took < 1.0 + supervisor.KILL_WAIT_SECONDS + 0.5
    assert polite.exit_code == -signal.SIGTERM
    assert stubborn.exit_code == -signal.SIGKILL
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in procs)
    log = _logged(capsys)
    assert "stubborn did not stop in time, killing it" in log
    assert "polite did not stop" not in log
