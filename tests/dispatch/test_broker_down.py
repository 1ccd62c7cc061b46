"""A reply whose row is committed is accepted although the broker is down: POST /reply answers
201 in bounded time, and the row is due for the outbox sweeper's next pass (every few seconds),
which publishes it once the broker is back. With the broker up, the row is not due again soon: the
sweeper does not flood a healthy queue with copies.

The app runs on a database of the test's own, whose commits are real (only a real commit
publishes), and Celery on a broker that refuses connections or never answers."""

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from celery import Celery
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

import app.worker.celery_app
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker, transaction
from app.dispatch import sender
from app.dispatch.models import OutboundReply
from app.dispatch.service import REQUEUE_AFTER
from app.worker.celery_app import create_celery
from tests import factories
from tests.committed import own_database, running_app
from tests.faults import closed_port, silent_port
from tests.services import Services, database_name

pytestmark = pytest.mark.multiprocess

TEXT = "Здравствуйте! Спасибо за отзыв, рады, что товар понравился."


@pytest.fixture(scope="module")
async def db_settings(services: Services, settings: Settings) -> AsyncIterator[Settings]:
    name = database_name("broker")
    async with own_database(services, settings, name) as url:
        yield settings.model_copy(update={"database_url": url})


@pytest.fixture(scope="module")
async def engine(db_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_settings, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def api(db_settings: Settings) -> AsyncIterator[AsyncClient]:
    async with running_app(db_settings) as (_, client):
        yield client


@pytest.fixture
def use_broker(monkeypatch: pytest.MonkeyPatch) -> Any:
    """`use_broker(url)`: Celery as configured for production (timeouts, retry policy), on
    `url`; what `core.db.transaction` publishes after commit goes there."""

    def use(url: str) -> Celery:
        celery = create_celery()
        celery.conf.broker_url = url
        monkeypatch.setattr(app.worker.celery_app, "celery_app", celery)
        return celery

    return use


async def _shop(engine: AsyncEngine, settings: Settings, api: AsyncClient) -> tuple[int, Any]:
    """A committed seller with a Wildberries account and a review; (review id, auth headers)."""
    email = f"broker-{time.time_ns()}@example.com"
    async with transaction(create_sessionmaker(engine)) as session:
        seller = await factories.create_seller(session, "Broker shop")
        await factories.create_user(session, seller, email)
        await factories.connect_wildberries(session, seller, settings)
        review = await factories.create_interaction(session, seller)
    return review.id, await factories.login(api, email)


async def _reply(api: AsyncClient, review_id: int, headers: Any) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    response = await api.post(
        f"/api/v1/interactions/{review_id}/reply", json={"text": TEXT}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json(), time.monotonic() - started


async def _row(engine: AsyncEngine, reply_id: int) -> OutboundReply:
    async with create_sessionmaker(engine)() as session:
        row = await session.get(OutboundReply, reply_id)
        assert row is not None
        return row


@pytest.mark.parametrize("broker", ["refused", "silent"])
async def test_a_reply_is_accepted_when_the_broker_is_down_and_swept_when_it_is_back(
    engine: AsyncEngine,
    db_settings: Settings,
    api: AsyncClient,
    redis: Redis,
    use_broker: Any,
    broker: str,
) -> None:
    review_id, headers = await _shop(engine, db_settings, api)

    with silent_port() as silent:
        port = closed_port() if broker == "refused" else silent
        use_broker(f"redis://127.0.0.1:{port}/0")
        body, took = await _reply(api, review_id, headers)

    assert took < db_settings.broker_publish_timeout_seconds + 1.5
    row = await _row(engine, body["id"])
    assert row.state == "queued"
    assert row.next_attempt_at <= datetime.now(UTC)  # due for the sweeper's next pass

    use_broker(db_settings.require_redis_url())  # the broker is back
    deps = sender.DispatchDeps(create_sessionmaker(engine), redis, db_settings)
    assert await sender.sweep(deps) == 1
    row = await _row(engine, body["id"])
    assert row.next_attempt_at > datetime.now(UTC) + REQUEUE_AFTER - timedelta(seconds=30)
    assert await sender.sweep(deps) == 0  # published once, not at every pass


async def test_with_the_broker_up_a_reply_is_not_due_again_soon(
    engine: AsyncEngine, db_settings: Settings, api: AsyncClient, redis: Redis, use_broker: Any
) -> None:
    review_id, headers = await _shop(engine, db_settings, api)
    use_broker(db_settings.require_redis_url())

    body, _ = await _reply(api, review_id, headers)

    row = await _row(engine, body["id"])
    assert row.next_attempt_at > datetime.now(UTC) + REQUEUE_AFTER - timedelta(seconds=30)
    deps = sender.DispatchDeps(create_sessionmaker(engine), redis, db_settings)
    assert await sender.sweep(deps) == 0
