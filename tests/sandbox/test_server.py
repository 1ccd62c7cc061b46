"""The real process: `python -m app.sandbox --demo` on a free port, over HTTP."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.multiprocess

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(port: int, *args: str) -> tuple["subprocess.Popen[str]", str]:
    """A sandbox process with a demo seller, once it answers; (process, demo token)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.sandbox", "--port", str(port), "--demo", *args],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    token, base = None, f"http://127.0.0.1:{port}"
    for line in proc.stdout:
        if line.startswith("SANDBOX_DEMO_TOKEN="):
            token = line.strip().split("=", 1)[1]
            break
    assert token, "the sandbox printed no demo token"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/_sandbox/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    return proc, token


@pytest.fixture
def server() -> Iterator[tuple[str, str]]:
    """(base URL, demo token) of a sandbox process, stopped with SIGTERM afterwards."""
    port = _free_port()
    proc, token = _start(port)
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def test_the_demo_server_answers_over_http(server: tuple[str, str]) -> None:
    base, token = server
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        count = client.get("/api/v1/feedbacks/count", params={"isAnswered": "false"})
        page = client.get("/api/v1/feedbacks", params={"isAnswered": "false", "take": 5, "skip": 0})
        questions = client.get("/api/v1/questions/count-unanswered")
        chats = client.get("/api/v1/seller/chats")
        sellers = httpx.get(f"{base}/_sandbox/sellers").json()["sellers"]

    assert count.status_code == 200
    assert len(page.json()["data"]["feedbacks"]) == 5
    assert 0 <= int(page.headers["X-Ratelimit-Remaining"]) < 6  # real time refills the bucket
    assert questions.json()["data"]["countUnanswered"] > 0
    assert len(chats.json()["result"]) == 40
    [demo] = sellers
    assert demo["name"] == "demo"
    assert demo["token"] == token
    summary = httpx.get(f"{base}/_sandbox/sellers/{demo['seller_id']}").json()["counts"]
    assert (summary["review"]["total"], summary["question"]["total"]) == (300, 120)


def test_a_killed_sandbox_comes_back_with_its_state_file(tmp_path: Path) -> None:
    port, state = _free_port(), tmp_path / "sandbox.json"
    base = f"http://127.0.0.1:{port}"
    proc, token = _start(port, "--state-file", str(state))
    try:
        [demo] = httpx.get(f"{base}/_sandbox/sellers").json()["sellers"]
        url = f"{base}/_sandbox/sellers/{demo['seller_id']}"
        added = httpx.post(f"{url}/items", json={"channel": "review", "count": 7}).json()["ids"]
        httpx.post(f"{url}/token/revoke")
    finally:
        proc.kill()  # no chance to write anything on the way out
        proc.wait(timeout=15)

    proc, token_again = _start(port, "--state-file", str(state))
    try:
        summary = httpx.get(url).json()
        refused = httpx.get(f"{base}/ping", headers={"Authorization": token})
        httpx.post(f"{url}/token/restore")
        headers = {"Authorization": token}
        page = httpx.get(
            f"{base}/api/v1/feedbacks",
            params={"isAnswered": "false", "take": 7, "skip": 0},
            headers=headers,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)

    assert token_again == token
    assert summary["counts"]["review"]["total"] == 300 + 7
    assert summary["revoked"] is True
    assert refused.status_code == 401
    assert sorted(item["id"] for item in page.json()["data"]["feedbacks"]) == sorted(added)
