"""A send task that meets an unavailable database is tried again within seconds (the sweeper's
re-queue takes minutes); other failures are left to the sweeper."""

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text

from app.core.config import Settings
from app.core.db import create_engine
from app.dispatch import tasks
from tests.faults import closed_port


async def _database_down_error() -> BaseException:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/test"
    engine = create_engine(Settings(database_url=url))
    try:
        async with engine.connect() as connection:
            await connection.execute(text("select 1"))
    except Exception as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("a closed port accepted a connection")


async def _redis_down_error() -> BaseException:
    client = aioredis.Redis(port=closed_port(), socket_connect_timeout=1)
    try:
        await client.ping()
    except Exception as exc:
        return exc
    finally:
        await client.aclose()
    raise AssertionError("a closed port accepted a connection")


async def test_an_unavailable_database_is_retried_within_the_cap() -> None:
    exc = await _database_down_error()
    delays = [tasks.retry_in(exc, retries) for retries in range(tasks.SEND_RETRIES)]
    assert all(d is not None and 0 <= d <= tasks.SEND_RETRY_CAP_SECONDS for d in delays)
    # full jitter: the first tries come back within seconds
    assert all(d is not None and d <= 2**r for r, d in enumerate(delays[:4]))


async def test_retries_stop_at_the_limit_and_the_sweeper_takes_over() -> None:
    exc = await _database_down_error()
    assert tasks.retry_in(exc, tasks.SEND_RETRIES) is None
    assert tasks.send.max_retries == tasks.SEND_RETRIES


@pytest.mark.parametrize("error", ["redis", "bug"])
async def test_other_failures_are_not_retried_by_the_task(error: str) -> None:
    exc = await _redis_down_error() if error == "redis" else ValueError("a bug")
    assert tasks.retry_in(exc, 0) is None
