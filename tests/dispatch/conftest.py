"""Real processes for the dispatcher's end-to-end tests: a sandbox server, a database of the
test's own (worker processes must see committed rows) and Celery workers sending to both."""

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from celery import Celery
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.auth.service import Credential, Principal
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker, transaction
from app.core.security import SecretBox
from app.sellers import service as sellers_service
from app.sellers.models import Seller, SellerSettings
from app.sync import service as sync_service
from app.sync.models import SyncRun
from app.worker import lanes
from tests import factories
from tests.services import ROOT, Services, alembic, recreate_database_async
from tests.sync import conftest as sync_conftest

sandbox_url = sync_conftest.sandbox_url  # the real sandbox server, shared with tests/sync
SYNC_TIMEOUT = READY_TIMEOUT = 60.0


@pytest.fixture
async def own_db(services: Services, settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A database of the test's own (named per process: test runs may overlap), dropped after."""
    name = f"sellerdesk_test_dispatch_{os.getpid()}"
    url = await recreate_database_async(services, name)
    alembic(url, "upgrade", "head")
    engine = create_engine(settings.model_copy(update={"database_url": url}), pool_size=4)
    yield engine
    await engine.dispose()
    await _drop_database(services, name)


async def _drop_database(services: Services, name: str) -> None:
    conn = await asyncpg.connect(
        make_url(services.admin_url).set(drivername="postgresql").render_as_string(False)
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def shop(
    session: AsyncSession, client: httpx.AsyncClient, settings: Settings
) -> tuple[Seller, dict[str, str]]:
    """A logged-in operator whose seller has an active Wildberries account (a reply needs one)."""
    seller, headers = await factories.operator(session, client, "replies@example.com")
    await factories.connect_wildberries(session, seller, settings)
    return seller, headers


# How long the sandbox sellers of these tests keep an answer in moderation.
SANDBOX_MODERATION_SECONDS = 5


@pytest.fixture
def broker(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Celery:
    """Tasks deferred in this process (`core.db.transaction`) go to the test Redis: the app's
    Celery instance read REDIS_URL when first imported, which may predate the test settings."""
    import app.worker.celery_app

    celery = lanes.publisher(settings.require_redis_url())
    monkeypatch.setattr(app.worker.celery_app, "celery_app", celery)
    return celery


class Workers:
    """`celery worker --concurrency 1` processes against the test's database, Redis and sandbox;
    each in its own process group, its output in a log file."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started: list[float] = []

    def start(self, count: int = 1) -> None:
        for _ in range(count):
            self.procs.append(self._spawn(len(self.procs)))
            self.started.append(time.monotonic())

    async def ready(self, broker: Celery) -> None:
        """Wait until every worker answers a ping: a task published before any worker has
        declared its queue is dropped by the Redis transport."""
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            replies = await asyncio.to_thread(broker.control.ping, timeout=1.0)
            if len(replies or []) >= len(self.procs):
                return
            assert time.monotonic() < deadline, f"workers not ready\n{self.tail()}"

    def kill(self, index: int) -> None:
        """SIGKILL the worker (its pool child too) and start a fresh one in its place."""
        proc = self.procs[index]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        self.procs[index] = self._spawn(index)
        self.started[index] = time.monotonic()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def count_in_logs(self, pattern: str) -> list[int]:
        """How many lines of each worker's log (all its incarnations) match `pattern`."""
        regex = re.compile(pattern)
        return [
            sum(1 for line in (self.logs / f"worker-{i}.log").open(errors="replace")
                if regex.search(line))
            for i in range(len(self.procs))
        ]  # fmt: skip

    def tail(self, lines: int = 15) -> str:
        out = []
        for log in sorted(self.logs.glob("worker-*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        with (self.logs / f"worker-{index}.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "app.worker.celery_app", "worker",
                 "--concurrency", "1", "--without-mingle", "--without-gossip",
                 "--loglevel", "WARNING", "--hostname", f"dispatch{index}-{time.time_ns()}@%h"],
                cwd=ROOT, env=self.env, start_new_session=True, stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip


@pytest.fixture
def workers(
    own_db: AsyncEngine,
    settings: Settings,
    sandbox_url: str,
    tmp_path: Path,
    redis: Redis,  # flushed: no task or lock left over from an earlier run
) -> Iterator[Workers]:
    env = os.environ | {
        "DATABASE_URL": str(own_db.url.render_as_string(hide_password=False)),
        "REDIS_URL": settings.require_redis_url(),
        "SECRETS_KEY": settings.secrets_key.get_secret_value(),
        "WB_FEEDBACKS_BASE_URL": sandbox_url,
        "WB_BUYER_CHAT_BASE_URL": sandbox_url,
        "EGRESS_ALLOW_MARKETPLACE": sandbox_url,
        "ENV": "test",
        "LOG_FORMAT": "console",
        "LOG_LEVEL": "WARNING",
        # The sandbox's moderation (seconds here, not WB's minutes) plus a margin.
        "DISPATCH_QUESTION_MODERATION_SECONDS": str(SANDBOX_MODERATION_SECONDS + 2),
    }
    pool = Workers(env, tmp_path)
    yield pool
    pool.stop()


@dataclass
class Shop:
    """One seller on both sides: the sandbox's (`sandbox_id`, `token`) and ours, synced."""

    admin: httpx.AsyncClient  # the sandbox: its control API, and the marketplace with `token`
    maker: async_sessionmaker[AsyncSession]
    sandbox_id: str
    token: str
    principal: Principal

    async def put(self, what: str, body: dict[str, Any]) -> None:
        response = await self.admin.put(f"/_sandbox/sellers/{self.sandbox_id}/{what}", json=body)
        assert response.status_code == 200, response.text

    async def get(self, what: str) -> Any:
        response = await self.admin.get(f"/_sandbox/sellers/{self.sandbox_id}/{what}")
        assert response.status_code == 200, response.text
        return response.json()

    async def sync(self, channels: tuple[str, ...]) -> None:
        """Sync through the workers (`sync.run` tasks) and wait until every run succeeded."""
        async with transaction(self.maker) as session:
            runs, _ = await sync_service.request_runs(
                session, self.principal.seller_id, channels, trigger="manual"
            )
        ids = [run.id for run in runs]
        deadline = time.monotonic() + SYNC_TIMEOUT
        while True:
            async with self.maker() as session:
                statuses = list(
                    await session.scalars(select(SyncRun.status).where(SyncRun.id.in_(ids)))
                )
            if all(s == "succeeded" for s in statuses):
                return
            assert not {"failed", "partial"} & set(statuses), statuses
            assert time.monotonic() < deadline, f"sync did not finish: {statuses}"
            await asyncio.sleep(0.3)


@pytest.fixture
async def make_shop(
    own_db: AsyncEngine,
    settings: Settings,
    sandbox_url: str,
    broker: Celery,
) -> AsyncIterator[Any]:
    """`await make_shop(rate_limits={...}, **sandbox_seller)`: a new sandbox seller (limits off
    until the test turns them on) connected to a new seller of ours."""
    admin = httpx.AsyncClient(base_url=sandbox_url, timeout=30)
    maker = create_sessionmaker(own_db)

    async def make(rate_limits: dict[str, Any] | None = None, **spec: Any) -> Shop:
        spec = {"name": f"dispatch-{time.time_ns()}", **spec}
        created = (await admin.post("/_sandbox/sellers", json=spec)).json()
        async with transaction(maker) as session:
            seller = await sellers_service.create_seller(session, "Dispatch shop")
            seller.next_sync_at = datetime.now(UTC) + timedelta(days=1)
            await sellers_service.connect_account(
                session, SecretBox(settings.secrets_key.get_secret_value()), seller_id=seller.id,
                marketplace="wildberries", name="", token=created["token"],
            )  # fmt: skip
            prefs = await session.get(SellerSettings, seller.id)
            assert prefs is not None
            prefs.rate_limits = rate_limits or {}
            user = await factories.create_user(session, seller, f"{spec['name']}@example.com")
        principal = Principal(
            user_id=user.id, seller_id=seller.id, role="owner", credential=Credential.SESSION
        )
        shop = Shop(admin, maker, created["seller_id"], created["token"], principal)
        await shop.put("rate-limits", {"enabled": False})
        return shop

    yield make
    await admin.aclose()
