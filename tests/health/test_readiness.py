import time
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient, Response
from redis.asyncio import Redis

from app.core.config import Settings
from app.core.redis import create_redis
from app.dev.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from app.main import create_app
from app.worker import heartbeat, lanes
from tests.services import Services, alembic, database_name, recreate_database_async

LANE_CHECKS = {f"lane_{lane.name}" for lane in lanes.LANES}


async def _readyz(settings: Settings) -> Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/readyz")


async def _beat(redis_url: str, *, age: float = 0) -> None:
    client: Redis = create_redis(redis_url)
    await heartbeat.record(client, now=time.time() - age)
    await client.aclose()
    _stamp(redis_url, *lanes.LANES)


def _stamp(redis_url: str, *stamped: lanes.Lane, age: float = 0) -> None:
    """What each lane's worker does every heartbeat interval."""
    client = heartbeat.sync_client(redis_url)
    for lane in stamped:
        heartbeat.stamp_lanes(client, [lane.name], lane.node + "@test", time.time() - age)
    client.close()


def _failing(response: Response) -> list[str]:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"]["code"] == "not_ready"
    failing: list[str] = body["error"]["details"]["failing"]
    for name in failing:
        assert name in body["error"]["message"]
    return failing


async def test_ready_when_database_redis_migrations_and_heartbeats_are_fine(
    settings: Settings, redis: Redis
) -> None:
    await _beat(settings.require_redis_url())

    response = await _readyz(settings)

    assert response.status_code == 200
    checks = response.json()["checks"]
    assert set(checks) == {"database", "migrations", "redis", "worker_heartbeat", *LANE_CHECKS}
    assert all(check["ok"] for check in checks.values())
    assert checks["lane_sync"]["detail"].startswith("1 consumer(s), newest ")


async def test_not_ready_without_a_worker_heartbeat(settings: Settings, redis: Redis) -> None:
    _stamp(settings.require_redis_url(), *lanes.LANES)

    assert _failing(await _readyz(settings)) == ["worker_heartbeat"]


async def test_not_ready_with_a_stale_heartbeat(settings: Settings, redis: Redis) -> None:
    _stamp(settings.require_redis_url(), *lanes.LANES)
    await heartbeat.record(redis, now=time.time() - settings.heartbeat_max_age_seconds - 5)

    assert _failing(await _readyz(settings)) == ["worker_heartbeat"]


async def test_not_ready_while_a_lane_has_no_live_consumer(
    settings: Settings, redis: Redis
) -> None:
    url, limit = settings.require_redis_url(), settings.heartbeat_max_age_seconds
    await heartbeat.record(redis)
    _stamp(url, lanes.CONTROL, lanes.REPLIES)
    _stamp(url, lanes.SYNC, age=limit + 5)  # its worker died a while ago
    await redis.lpush("sync", "a task", "another")  # and work waits for it

    response = await _readyz(settings)

    assert _failing(response) == ["lane_sync", "lane_background"]
    checks = response.json()["error"]["details"]["checks"]
    assert (
        checks["lane_sync"]["detail"]
        == f"no live consumer (last seen {limit + 5:.0f}s ago); 2 waiting"
    )
    assert checks["lane_background"]["detail"] == "no live consumer (none seen); 0 waiting"


@pytest.mark.multiprocess
async def test_not_ready_when_redis_stops(settings: Settings, tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", free_port(), persist=False)
    own = settings.model_copy(update={"redis_url": server.start()})
    try:
        await _beat(server.url)
        assert (await _readyz(own)).status_code == 200
    finally:
        server.stop()

    failing = _failing(await _readyz(own))

    assert "redis" in failing
    assert "database" not in failing


@pytest.mark.multiprocess
async def test_not_ready_when_postgres_stops(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", free_port(), durable=False)
    own = settings.model_copy(update={"database_url": server.start()})
    try:
        alembic(server.url, "upgrade", "head")
        await _beat(settings.require_redis_url())
        assert (await _readyz(own)).status_code == 200
    finally:
        server.stop()

    failing = _failing(await _readyz(own))

    assert "database" in failing
    assert "redis" not in failing


async def test_not_ready_when_migrations_are_not_at_head(
    settings: Settings, services: Services, redis: Redis
) -> None:
    behind = await recreate_database_async(services, database_name("behind"))
    await _beat(settings.require_redis_url())

    response = await _readyz(settings.model_copy(update={"database_url": behind}))

    assert _failing(response) == ["migrations"]
    detail = response.json()["error"]["details"]["checks"]["migrations"]["detail"]
    assert "head is" in detail


async def test_healthz_needs_nothing(settings: Settings) -> None:
    down = settings.model_copy(
        update={
            "database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/x",
            "redis_url": f"redis://127.0.0.1:{free_port()}/0",
        }
    )
    app = create_app(down)
    transport = ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        failing = _failing(await client.get("/readyz"))
    assert set(failing) == {"database", "migrations", "redis", "worker_heartbeat", *LANE_CHECKS}
