"""A real sandbox server process, shared by the tests that need real HTTP and other processes."""

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from app.dev.embedded import free_port
from tests.services import ROOT


@pytest.fixture(scope="session")
def sandbox_url() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.sandbox", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/_sandbox/health", timeout=1).is_success:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(10)
