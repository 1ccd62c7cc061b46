"""The real Postgres and Redis the tests run against.

TEST_DATABASE_URL / TEST_REDIS_URL when set (a server the tests may create databases on, and a
Redis database they may flush), else embedded servers started for the session.

Under pytest-xdist (`pytest -n N`) every worker is a session of its own and must not share a
database or a Redis database with another: worker gwK uses the databases TEST_DB_NAME_gwK*
(`database_name`), Redis database number TEST_REDIS_URL's + K (modulo 16), and embedded
servers of its own under .data/test/gwK.
"""

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from sqlalchemy.engine import make_url

from app.dev.embedded import EmbeddedPostgres, EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parents[1]
REDIS_DATABASES = 16  # Redis's default `databases`


def xdist_worker() -> str:
    """The xdist worker id ("gw0", "gw1", ...), or "" in a plain pytest run."""
    return os.environ.get("PYTEST_XDIST_WORKER", "")


def database_name(suffix: str = "") -> str:
    """The name of a test database of this session: TEST_DB_NAME (two test sessions on one
    server need different ones), then the xdist worker, then `suffix` for a test's own database.
    Each session drops and creates its names, so none may be shared by two sessions."""
    parts = [os.environ.get("TEST_DB_NAME", "sellerdesk_test"), xdist_worker(), suffix]
    return "_".join(part for part in parts if part)


def worker_redis_url(url: str, worker: str) -> str:
    """`url` for xdist worker `worker`: its database number moved up by the worker's index
    (modulo Redis's 16), so workers never flush each other's keys or take each other's Celery
    tasks. With TEST_REDIS_URL on a shared server, `-n N` takes N consecutive databases."""
    if not worker:
        return url
    parts = urlsplit(url)
    number = (int(parts.path.strip("/") or 0) + int(worker.removeprefix("gw"))) % REDIS_DATABASES
    return urlunsplit(parts._replace(path=f"/{number}"))


@dataclass
class Services:
    admin_url: str  # a database on the server we may connect to, to create/drop others
    redis_url: str
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None

    def database_url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def stop(self) -> None:
        if self.redis:
            self.redis.stop()
        if self.postgres:
            self.postgres.stop()


def start_services() -> Services:
    worker = xdist_worker()
    data = ROOT / ".data" / "test" / worker if worker else ROOT / ".data" / "test"
    admin_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    if redis_url:
        redis_url = worker_redis_url(redis_url, worker)
    postgres = redis = None
    if not admin_url:
        postgres = EmbeddedPostgres(data / "postgres", free_port(), durable=False)
        postgres.start()
        admin_url = postgres.admin_url
    if not redis_url:
        redis = EmbeddedRedis(data / "redis", free_port(), persist=False)
        redis_url = redis.start()
    return Services(admin_url, redis_url, postgres, redis)


def _plain(url: str) -> str:
    """asyncpg wants postgresql:// without a driver suffix."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _recreate(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(_plain(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def recreate_database_async(services: Services, name: str) -> str:
    """Drop and create database `name` on the test server; its URL."""
    await _recreate(services.admin_url, name)
    return services.database_url(name)


def recreate_database(services: Services, name: str) -> str:
    return asyncio.run(recreate_database_async(services, name))


def alembic(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
