"""The processes a benchmark runs against, and how it watches them.

Postgres and Redis are the servers in BENCH_DATABASE_URL / BENCH_REDIS_URL when set (a server the
benchmark may create a database on, and a Redis database it may flush), else embedded ones under
`.data/bench/`. The sandbox and the Celery worker are real subprocesses, started as `make run`
starts them; a sampler thread records the worker's memory, and `tree_cpu_seconds` the CPU time
of any process tree.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import psutil
from celery import Celery
from redis import Redis
from sqlalchemy.engine import make_url

from app.dev.embedded import EmbeddedPostgres, EmbeddedRedis, die_with_parent, free_port

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".data" / "bench"
BENCH_DATABASE = "sellerdesk_bench"
_STARTED = time.monotonic()


class BenchError(RuntimeError):
    """Something the benchmark cannot go on without (a process died, a wait timed out)."""


def say(message: str) -> None:
    """A progress line: seconds since start, then the message."""
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", flush=True)


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


def _plain(url: str) -> str:
    """asyncpg wants postgresql:// without a driver suffix."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def recreate_database(services: Services) -> None:
    conn = await asyncpg.connect(_plain(services.admin_url))
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


@dataclass
class SandboxServer:
    """`python -m app.sandbox` on a free port of 127.0.0.1 (real HTTP)."""

    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log: Path = DATA / "sandbox.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own argv
                [
                    sys.executable,
                    "-m",
                    "app.sandbox",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGTERM),
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"the sandbox exited with {self.proc.returncode}; see {self.log}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/_sandbox/health", timeout=1).is_success:
                    return
            time.sleep(0.2)
        raise BenchError(f"the sandbox did not answer within 60 s; see {self.log}")

    def stop(self) -> None:
        _stop_group(self.proc, signal.SIGTERM, 10)


@dataclass
class Worker:
    """A Celery worker exactly as `make run` starts it: prefork, `--concurrency 2`."""

    env: dict[str, str]
    concurrency: int = 2
    proc: subprocess.Popen[bytes] | None = None
    log: Path = DATA / "worker.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, broker_url: str) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own argv
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "app.worker.celery_app",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    str(self.concurrency),
                    "-n",
                    "bench@%h",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGTERM),
            )
        broker = Celery(broker=broker_url)
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
