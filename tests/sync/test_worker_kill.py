"""A worker SIGKILLed in the middle of a large sync: after a restart the run resumes, and the end
state equals a clean sync (no lost item, no duplicate, cursor at the newest item)."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import create_engine
from app.core.security import SecretBox
from app.interactions.models import Interaction
from app.sellers import service as sellers_service
from app.sync import repository, service
from app.sync.models import SyncRun
from app.worker import lanes
from tests.services import ROOT, Services, alembic, database_name, recreate_database_async

pytestmark = pytest.mark.multiprocess

REVIEWS = 40_000


@pytest.fixture
async def own_db(services: Services, settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A database of its own: the worker processes must see committed data."""
    # Named after TEST_DB_NAME: test sessions that overlap on one server need their own.
    name = database_name("kill")
    url = await recreate_database_async(services, name)
    alembic(url, "upgrade", "head")
    engine = create_engine(settings.model_copy(update={"database_url": url}), pool_size=2)
    yield engine
    await engine.dispose()


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "app.worker.celery_app", "worker",
         "--concurrency", "1", "--without-mingle", "--without-gossip", "--loglevel", "WARNING"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip


async def _run(maker: async_sessionmaker[AsyncSession], run_id: int) -> SyncRun:
    async with maker() as session:
        run = await session.get(SyncRun, run_id)
        assert run is not None
        return run


async def test_sigkilled_worker_resumes_to_a_clean_end_state(
    sandbox_url: str, own_db: AsyncEngine, settings: Settings
) -> None:
    admin = httpx.AsyncClient(base_url=sandbox_url)
    created = (
        await admin.post("/_sandbox/sellers", json={"name": f"kill-{time.time_ns()}", "seed": 5,
                                                     "reviews": REVIEWS, "questions": 10,
                                                     "chats": 1})
    ).json()  # fmt: skip
    # Slow pages down so the kill lands mid-run.
    await admin.put(f"/_sandbox/sellers/{created['seller_id']}/faults",
                    json={"latency_ms": [300, 400]})  # fmt: skip
    maker = async_sessionmaker(own_db, expire_on_commit=False)
    async with maker() as session:
        seller = await sellers_service.create_seller(session, "Kill shop")
        seller.next_sync_at = datetime.now(UTC) + timedelta(days=1)  # the tick must not add runs
        await sellers_service.connect_account(
            session, SecretBox(settings.secrets_key.get_secret_value()), seller_id=seller.id,
            marketplace="wildberries", name="", token=created["token"],
        )  # fmt: skip
        (run,), _ = await service.request_runs(session, seller.id, ("review",), trigger="manual")
        session.info.clear()  # we publish ourselves, to the test broker
        await session.commit()
    env = os.environ | {
        "DATABASE_URL": str(own_db.url.render_as_string(hide_password=False)),
        "REDIS_URL": settings.require_redis_url(),
        "SECRETS_KEY": settings.secrets_key.get_secret_value(),
        "WB_FEEDBACKS_BASE_URL": sandbox_url,
        "WB_BUYER_CHAT_BASE_URL": sandbox_url,
        "EGRESS_ALLOW_MARKETPLACE": sandbox_url,
        "SYNC_LOCK_TTL_SECONDS": "2",
        "ENV": "test",
    }
    broker = lanes.publisher(settings.require_redis_url())
    worker = _worker(env)
    try:
        broker.send_task("sync.run", args=[run.id])
        deadline = time.monotonic() + 90
        while (await _run(maker, run.id)).fetched < 10_000 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        at_kill = await _run(maker, run.id)
        assert at_kill.status == "running"
        assert 0 < at_kill.fetched < 2 * REVIEWS  # both lists: killed well before the end

        await asyncio.sleep(2.5)  # the dead worker's lock expires
        worker = _worker(env)
        broker.send_task("sync.tick")  # beat's tick finds the orphaned run and re-queues it
        deadline = time.monotonic() + 120
        while (done := await _run(maker, run.id)).status in ("queued", "running"):
            assert time.monotonic() < deadline, "the run was never resumed"
            await asyncio.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(20)

    assert (done.status, done.resumes) == ("succeeded", 1)
    async with maker() as session:
        rows = await session.execute(
            select(func.count(), func.count(func.distinct(Interaction.external_id))).where(
                Interaction.seller_id == seller.id
            )
        )
        total, distinct = rows.one()
        state = await repository.get_cursor_state(session, seller.id, "review")
    assert total == distinct == REVIEWS
    newest = {}
    for answered in ("false", "true"):
        page = await admin.get(
            "/api/v1/feedbacks",
            params={"isAnswered": answered, "take": 1, "skip": 0, "order": "dateDesc"},
            headers={"Authorization": created["token"]},
        )
        newest[answered] = int(
            datetime.fromisoformat(page.json()["data"]["feedbacks"][0]["createdDate"]).timestamp()
        )
    assert state == {"unanswered": newest["false"], "answered": newest["true"]}
    await admin.aclose()
