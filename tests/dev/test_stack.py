"""`make run` end to end: embedded servers, migrations, demo login, clean stop, data reused."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from app.dev.embedded import free_port
from tests.services import ROOT


def _get(url: str, body: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _run_stack(data_dir: Path) -> tuple[str, dict[str, object]]:
    """Start the stack, wait for readiness, log in, stop it with SIGTERM; (output, login)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {
        "ENV": "development",
        "DATA_DIR": str(data_dir),
        "API_PORT": str(port),
        "EMBEDDED_PG_PORT": str(free_port()),
        "EMBEDDED_REDIS_PORT": str(free_port()),
        "SANDBOX_PORT": str(free_port()),
        "HEARTBEAT_INTERVAL_SECONDS": "1",
    }
    stack = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        status = 0
        while time.monotonic() < deadline and stack.poll() is None:
            try:
                status, _ = _get(f"{base}/readyz")
            except OSError:
                status = 0
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200, "stack never became ready"
        login_status, login = _get(
            f"{base}/api/v1/auth/login", {"email": "demo@example.com", "password": "demo"}
        )
        assert login_status == 200
        descendants = psutil.Process(stack.pid).children(recursive=True)
        assert len(descendants) >= 5  # postgres, redis, api, worker (+pool), beat
    finally:
        stack.send_signal(signal.SIGTERM)
        output, _ = stack.communicate(timeout=60)
    assert stack.returncode == 0, output
    _, still_alive = psutil.wait_procs(descendants, timeout=5)
    assert still_alive == [], f"orphans left behind: {still_alive}"
    return output, login


def test_run_brings_everything_up_stops_cleanly_and_reuses_its_data(tmp_path: Path) -> None:
    first_output, first_login = _run_stack(tmp_path)
    second_output, _ = _run_stack(tmp_path)

    assert first_login["token_type"] == "bearer"
    assert "demo operator demo@example.com created" in first_output
    assert "embedded Postgres" in first_output
    assert "demo operator demo@example.com already exists" in second_output
    assert "stopped" in second_output
