import time
from pathlib import Path

from httpx import ASGITransport, AsyncClient, Response
from redis.asyncio import Redis

from app.config import Settings
from app.core.redis import create_redis
from app.dev.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from app.health import heartbeat
from app.main import create_app
from tests.services import Services, alembic, recreate_database_async


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


def _failing(response: Response) -> list[str]:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"]["code"] == "not_ready"
    failing: list[str] = body["error"]["details"]["failing"]
    for name in failing:
        assert name in body["error"]["message"]
    return failing


async def test_ready_when_database_redis_migrations_and_heartbeat_are_fine(
    settings: Settings, redis: Redis
) -> None:
    await heartbeat.record(redis)

    response = await _readyz(settings)

    assert response.status_code == 200
    checks = response.json()["checks"]
    assert set(checks) == {"database", "migrations", "redis", "worker_heartbeat"}
    assert all(check["ok"] for check in checks.values())


async def test_not_ready_without_a_worker_heartbeat(settings: Settings, redis: Redis) -> None:
    assert _failing(await _readyz(settings)) == ["worker_heartbeat"]


async def test_not_ready_with_a_stale_heartbeat(settings: Settings, redis: Redis) -> None:
    await heartbeat.record(redis, now=time.time() - settings.heartbeat_max_age_seconds - 5)

    assert _failing(await _readyz(settings)) == ["worker_heartbeat"]


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


async def test_not_ready_when_postgres_stops(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", free_port(), durable=False)
    own = settings.model_copy(update={"database_url": server.start()})
    try:
        alembic(server.url, "upgrade", "head")
        await heartbeat.record(redis)
        assert (await _readyz(own)).status_code == 200
    finally:
        server.stop()

    failing = _failing(await _readyz(own))

    assert "database" in failing
    assert "redis" not in failing


async def test_not_ready_when_migrations_are_not_at_head(
    settings: Settings, services: Services, redis: Redis
) -> None:
    behind = await recreate_database_async(services, "sellerdesk_test_behind")
    await heartbeat.record(redis)

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
    assert set(failing) == {"database", "migrations", "redis", "worker_heartbeat"}
