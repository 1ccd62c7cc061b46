"""The processes a benchmark runs against, and how it watches them.

Postgres and Redis are the servers in BENCH_DATABASE_URL / BENCH_REDIS_URL when set (a server the
benchmark may create a database on, and a Redis database it may flush), else embedded ones under
`.data/bench/`. The sandbox, the Celery worker and the API are real subprocesses, started as
`make run` starts them; a sampler thread records the worker's memory, and `tree_cpu_seconds` the
CPU time of any process tree. `Harness` holds the benchmark's own connections (our database, the
sandbox's control API, the broker) and creates sellers in the sandbox and in our database.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import asyncpg  # type: ignore[import-untyped]
import httpx
import psutil
from pydantic import SecretStr
from redis import Redis
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

import app.models  # noqa: F401 - every table in the metadata, or foreign keys cannot resolve
from app.core.config import Settings
from app.core.db import create_engine
from app.core.security import SecretBox
from app.dev.embedded import EmbeddedPostgres, EmbeddedRedis, die_with_parent, free_port
from app.interactions.models import ChatMessage, Interaction
from app.sellers import service as sellers_service
from app.sellers.models import SellerSettings
from app.sync import service as sync_service
from app.worker import lanes

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".data" / "bench"
BENCH_DATABASE = "sellerdesk_bench"
_STARTED = time.monotonic()
T = TypeVar("T")


class BenchError(RuntimeError):
    """Something the benchmark cannot go on without (a process died, a wait timed out)."""


def say(message: str) -> None:
    """A progress line: seconds since start, then the message."""
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", flush=True)


async def poll(
    label: str,
    load: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    brief: Callable[[T], str],
    limit_s: float,
    alive: Callable[[], None],
    *,
    not_done: str = "not done",
    interval: float = 0.2,
    progress_every: float = 5.0,
) -> T:
    """`load()` every `interval` s until `done` says so; a progress line (`brief`) every
    `progress_every` s; BenchError after `limit_s` s, or as soon as `alive()` raises."""
    started = time.monotonic()
    next_progress = started + progress_every
    while True:
        state = await load()
        if done(state):
            return state
        now = time.monotonic()
        if now - started > limit_s:
            raise BenchError(f"{label}: {not_done} after {limit_s:.0f} s: {brief(state)}")
        alive()
        if now >= next_progress:
            say(f"  {label}: {now - started:5.1f} s, {brief(state)}")
            next_progress = now + progress_every
        await asyncio.sleep(interval)


# --- Postgres and Redis ------------------------------------------------------------------------


@dataclass
class Services:
    admin_url: str  # a database on the server we may connect to, to drop/create ours
    redis_url: str
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    database: str = BENCH_DATABASE  # the benchmark's own database, dropped and created

    @property
    def database_url(self) -> str:
        url = make_url(self.admin_url).set(database=self.database)
        return url.render_as_string(hide_password=False)

    def describe(self) -> str:
        pg = (
            "embedded (fsync=off, synchronous_commit=off)"
            if self.postgres
            else "BENCH_DATABASE_URL"
        )
        redis = "embedded (no persistence)" if self.redis else "BENCH_REDIS_URL"
        return f"Postgres {pg}, Redis {redis}"

    def stop(self) -> None:
        if self.redis:
            self.redis.stop()
        if self.postgres:
            self.postgres.stop()


def start_services(database: str = BENCH_DATABASE, data: Path = DATA) -> Services:
    """`database`: the benchmark's own database name. `data`: where embedded servers keep their
    files (one benchmark per directory: a second benchmark starting on the same directory would
    stop the first one's Postgres)."""
    admin_url = os.environ.get("BENCH_DATABASE_URL")
    redis_url = os.environ.get("BENCH_REDIS_URL")
    services = Services(admin_url or "", redis_url or "", database=database)
    try:
        if not admin_url:
            services.postgres = EmbeddedPostgres(data / "postgres", free_port(), durable=False)
            say(f"BENCH_DATABASE_URL not set: embedded Postgres under {services.postgres.pgdata}")
            services.postgres.start()
            services.admin_url = services.postgres.admin_url
        if not redis_url:
            services.redis = EmbeddedRedis(data / "redis", free_port(), persist=False)
            say(f"BENCH_REDIS_URL not set: embedded Redis under {services.redis.dir}")
            services.redis_url = services.redis.start()
    except BaseException:
        services.stop()
        raise
    return services


def plain_url(url: str) -> str:
    """asyncpg wants postgresql:// without a driver suffix."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def recreate_database(services: Services) -> None:
    conn = await asyncpg.connect(plain_url(services.admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{services.database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{services.database}"')
    finally:
        await conn.close()


def migrate(database_url: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )


def flush_redis(url: str) -> None:
    client = Redis.from_url(url, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


def delete_redis_keys(url: str, pattern: str) -> int:
    client = Redis.from_url(url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=pattern, count=1000))
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()


# --- subprocesses ------------------------------------------------------------------------------


def _stop_group(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    """Stop a child we started in its own session: `sig` to its group, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def spawn(argv: list[str], log: Path, env: dict[str, str] | None) -> subprocess.Popen[bytes]:
    """Start a child of ours in a session of its own (stopped with `_stop_group`; SIGTERM when
    we die), its output into `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 - our own argv
            argv,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )


@dataclass
class HttpServer:
    """A server we start in a session of its own on a free port of 127.0.0.1, and poll until its
    health URL answers."""

    env: dict[str, str] | None = None  # None: ours
    log: Path = DATA / "server.log"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    start_timeout: float = 60.0
    name: ClassVar[str] = "server"
    health: ClassVar[str] = "/"
    stop_timeout: ClassVar[float] = 10.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.proc = spawn(self.argv(), self.log, self.env)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}{self.health}", timeout=1).is_success:
                    return
            time.sleep(0.2)
        raise BenchError(
            f"the {self.name} did not answer within {self.start_timeout:g} s; see {self.log}"
        )

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = self.proc.returncode if self.proc else None
            raise BenchError(f"the {self.name} exited ({code}); see {self.log}")

    def stop(self) -> None:
        _stop_group(self.proc, signal.SIGTERM, self.stop_timeout)


@dataclass
class SandboxServer(HttpServer):
    """`python -m app.sandbox` (real HTTP)."""

    log: Path = DATA / "sandbox.log"
    name: ClassVar[str] = "sandbox"
    health: ClassVar[str] = "/_sandbox/health"

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "app.sandbox", "--port", str(self.port),
            "--log-level", "warning",
        ]  # fmt: skip


@dataclass
class ApiServer(HttpServer):
    """`python -m uvicorn --factory app.main:asgi`, as `make run` starts the API: one process
    (`workers` > 1: uvicorn's own worker processes, as a production host would run)."""

    log: Path = DATA / "api.log"
    workers: int = 1
    name: ClassVar[str] = "API"
    health: ClassVar[str] = "/healthz"
    stop_timeout: ClassVar[float] = 15.0

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", "--factory", "app.main:asgi",
            "--host", "127.0.0.1", "--port", str(self.port), "--no-access-log",
            *(["--workers", str(self.workers)] if self.workers > 1 else []),
        ]  # fmt: skip


def api_env(services: Services, secrets_key: str, jwt_secret: str) -> dict[str, str]:
    """The API's environment on the benchmark's servers: production, fixed secrets, warnings."""
    return {
        **os.environ,
        "ENV": "production",
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "JWT_SECRET": jwt_secret,
        "SECRETS_KEY": secrets_key,
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
    }


async def login(client: httpx.AsyncClient, email: str, password: str) -> str:
    """`POST /api/v1/auth/login`: the bearer token."""
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    if response.status_code != 200:
        raise BenchError(f"login failed: {response.status_code} {response.text[:300]}")
    return str(response.json()["access_token"])


@dataclass
class Worker:
    """One Celery worker, prefork, `--concurrency 2`, reading `queues` (default every lane;
    `make run` starts a worker per lane, app/worker/lanes.py)."""

    env: dict[str, str]
    concurrency: int = 2
    queues: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    log: Path = DATA / "worker.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, broker_url: str) -> None:
        argv = [
            sys.executable, "-m", "celery", "-A", "app.worker.celery_app", "worker",
            "--loglevel", "INFO", "--concurrency", str(self.concurrency), "-n", "bench@%h",
            *(["--queues", self.queues] if self.queues else []),
        ]  # fmt: skip
        self.proc = spawn(argv, self.log, self.env)
        broker = lanes.publisher(broker_url)
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                self.check_alive()
                if broker.control.ping(timeout=1.0):
                    break
            else:
                raise BenchError(f"the worker did not answer a ping within 90 s; see {self.log}")
        finally:
            broker.close()
        # the pool processes are forked before the worker answers pings
        pool = self.pool_pids()
        if len(pool) < self.concurrency:
            raise BenchError(f"expected {self.concurrency} pool processes, found {len(pool)}")

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            code = self.proc.returncode if self.proc else None
            raise BenchError(f"the worker exited ({code}); see {self.log}")

    def pool_pids(self) -> list[int]:
        try:
            return [c.pid for c in psutil.Process(self.pid).children(recursive=True)]
        except psutil.Error:
            return []

    def stop(self) -> None:
        _stop_group(self.proc, signal.SIGTERM, 30)  # warm shutdown first


# --- watching processes ------------------------------------------------------------------------


def tree_cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and all its descendants, living or already reaped."""
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                t = child.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
    except psutil.Error:
        return float("nan")
    return total


def process_cpu_seconds(pid: int) -> float:
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return float("nan")
    return t.user + t.system


@dataclass
class MemoryPeaks:
    """Bytes. RSS counts the pages a pool process shares with the main process (forked
    copy-on-write) in full in each process, so the RSS sum overstates the worker's footprint;
    PSS splits every shared page among its sharers, so the PSS sum does not."""

    largest_pool_rss: int = 0  # peak of the largest single pool process
    total_rss: int = 0  # peak of main + pool processes at the same instant
    total_pss: int = 0  # peak of main + pool processes at the same instant
    main_rss: int = 0  # peak of the worker's main (consumer) process
    idle_largest_pool_rss: int = 0  # the first sample, taken before anything was published
    idle_total_pss: int = 0
    samples: int = 0


def _rss_pss(proc: psutil.Process) -> tuple[int, int]:
    try:
        info = proc.memory_full_info()  # /proc/<pid>/smaps_rollup: cheap
    except psutil.AccessDenied:
        rss = proc.memory_info().rss
        return rss, rss
    return info.rss, info.pss


class MemorySampler:
    """Samples RSS and PSS of the worker's main process and its children every `interval` s,
    from entering the block (a first sample at once) until leaving it."""

    def __init__(self, main_pid: int, interval: float = 0.05) -> None:
        self.main = psutil.Process(main_pid)
        self.interval = interval
        self.peaks = MemoryPeaks()
        self._children: list[psutil.Process] = []
        self._refresh_at = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)

    def __enter__(self) -> "MemorySampler":
        self._sample()
        self.peaks.idle_largest_pool_rss = self.peaks.largest_pool_rss
        self.peaks.idle_total_pss = self.peaks.total_pss
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._sample()
            except psutil.Error:  # the worker is gone; the poller reports that
                return

    def _sample(self) -> None:
        peaks = self.peaks
        if peaks.samples >= self._refresh_at:  # the pool rarely changes: re-list every ~1 s
            with contextlib.suppress(psutil.Error):
                self._children = self.main.children(recursive=True)
            self._refresh_at = peaks.samples + 20
        main_rss, main_pss = _rss_pss(self.main)
        total_rss, total_pss, largest = main_rss, main_pss, 0
        for child in self._children:
            try:
                rss, pss = _rss_pss(child)
            except psutil.Error:
                self._refresh_at = 0
                continue
            total_rss += rss
            total_pss += pss
            largest = max(largest, rss)
        peaks.main_rss = max(peaks.main_rss, main_rss)
        peaks.total_rss = max(peaks.total_rss, total_rss)
        peaks.total_pss = max(peaks.total_pss, total_pss)
        peaks.largest_pool_rss = max(peaks.largest_pool_rss, largest)
        peaks.samples += 1


# --- the benchmark's own connections, sellers --------------------------------------------------


@dataclass
class Tenant:
    """One seller, in the sandbox and in our database."""

    ours: int
    sandbox_id: str
    token: str
    expected: dict[str, int]  # review, question, chat, messages: what the sandbox holds


class Harness:
    """Our database (a pool of 2, the token box of `secrets_key`), the sandbox's control API and
    the broker, as the benchmark process uses them; `worker` once started (its log in `data`)."""

    def __init__(
        self, services: Services, sandbox: SandboxServer, secrets_key: str, data: Path = DATA
    ) -> None:
        self.services = services
        self.data = data
        self.sandbox = sandbox
        self.secrets_key = secrets_key
        self.settings = Settings(
            database_url=services.database_url,
            redis_url=services.redis_url,
            secrets_key=SecretStr(secrets_key),
            wb_feedbacks_base_url=sandbox.url,
            wb_buyer_chat_base_url=sandbox.url,
            wb_statistics_base_url=sandbox.url,
            egress_allow_marketplace=[sandbox.url],
        )
        self.box = SecretBox(secrets_key)
        self.engine: AsyncEngine = create_engine(self.settings, pool_size=2)
        self.maker = async_sessionmaker(self.engine, expire_on_commit=False)
        self.admin = httpx.AsyncClient(base_url=sandbox.url, timeout=60)
        self.broker = lanes.publisher(services.redis_url)
        self.worker: Worker | None = None

    async def close(self) -> None:
        await self.admin.aclose()
        await self.engine.dispose()
        self.broker.close()

    def worker_env(self, **extra: str) -> dict[str, str]:
        """The environment of a worker (or API) on the benchmark's servers and sandbox."""
        return os.environ | {
            "ENV": "development",
            "DATABASE_URL": self.services.database_url,
            "REDIS_URL": self.services.redis_url,
            "SECRETS_KEY": self.secrets_key,
            "WB_FEEDBACKS_BASE_URL": self.sandbox.url,
            "WB_BUYER_CHAT_BASE_URL": self.sandbox.url,
            "WB_STATISTICS_BASE_URL": self.sandbox.url,
            "EGRESS_ALLOW_MARKETPLACE": self.sandbox.url,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            **extra,
        }

    def start_worker(self, queues: str | None = None, **env: str) -> Worker:
        self.worker = Worker(self.worker_env(**env), queues=queues, log=self.data / "worker.log")
        self.worker.start(self.services.redis_url)
        say(
            f"worker up (pid {self.worker.pid}, pool {self.worker.pool_pids()}); "
            f"log {self.worker.log}"
        )
        return self.worker

    def cpu_snapshot(self, api: "ApiServer | None" = None) -> dict[str, float]:
        """CPU seconds so far of each process the benchmark watches."""
        assert self.worker is not None
        snap = {
            "worker, all processes": tree_cpu_seconds(self.worker.pid),
            "worker main process": process_cpu_seconds(self.worker.pid),
            "sandbox": tree_cpu_seconds(self.sandbox.pid),
            "benchmark process (sampler, polling)": process_cpu_seconds(os.getpid()),
        }
        for i, pid in enumerate(sorted(self.worker.pool_pids()), start=1):
            snap[f"worker pool process {i}"] = process_cpu_seconds(pid)
        if self.services.postgres and self.services.postgres.proc:
            snap["postgres, all backends"] = tree_cpu_seconds(self.services.postgres.proc.pid)
        if self.services.redis and self.services.redis.proc:
            snap["redis"] = tree_cpu_seconds(self.services.redis.proc.pid)
        if api is not None:
            snap["API"] = process_cpu_seconds(api.pid)
        return snap

    async def tenant(
        self, name: str, seed: int, spec: dict[str, Any], *, next_sync_at: datetime | None
    ) -> Tenant:
        """A sandbox seller generated from `spec`, and ours with its token connected."""
        response = await self.admin.post(
            "/_sandbox/sellers", json={"name": name, "seed": seed, **spec}
        )
        response.raise_for_status()
        created = response.json()
        counts = (await self.admin.get(f"/_sandbox/sellers/{created['seller_id']}")).json()[
            "counts"
        ]
        expected = {
            "review": counts["review"]["total"],
            "question": counts["question"]["total"],
            "chat": counts["chat"]["total"],
            "messages": counts["chat"]["events"],
        }
        async with self.maker() as session:
            seller = await sellers_service.create_seller(session, name)
            seller.next_sync_at = next_sync_at
            await sellers_service.connect_account(
                session,
                self.box,
                seller_id=seller.id,
                marketplace="wildberries",
                name="",
                token=created["token"],
            )
            await session.commit()
        return Tenant(seller.id, created["seller_id"], created["token"], expected)

    async def queue_runs(self, seller_id: int) -> list[int]:
        """A sync run per channel, not published: the caller publishes `sync.run` itself."""
        async with self.maker() as session:
            runs, active = await sync_service.request_runs(
                session, seller_id, sync_service.CHANNELS, trigger="manual"
            )
            if active:
                raise BenchError(f"runs still active for seller {seller_id}: {active}")
            session.info.clear()  # we publish ourselves, to the benchmark's broker
            await session.commit()
        return [run.id for run in runs]

    async def set_limits(self, tenant: Tenant, limits: dict[str, Any]) -> None:
        """`seller_settings.rate_limits`: our limiter's override ({} = our defaults)."""
        async with self.maker() as session:
            await session.execute(
                update(SellerSettings)
                .where(SellerSettings.seller_id == tenant.ours)
                .values(rate_limits=limits)
            )
            await session.commit()

    async def stored(self, seller_ids: Sequence[int]) -> dict[str, int]:
        """Interactions per channel and chat messages in our database."""
        async with self.maker() as session:
            rows = await session.execute(
                select(Interaction.channel, func.count())
                .where(Interaction.seller_id.in_(seller_ids))
                .group_by(Interaction.channel)
            )
            counts = {channel: int(n) for channel, n in rows}
            messages = await session.execute(
                select(func.count()).where(ChatMessage.seller_id.in_(seller_ids))
            )
            counts["messages"] = int(messages.scalar_one())
        return {k: counts.get(k, 0) for k in ("review", "question", "chat", "messages")}
