"""The database or Redis unavailable, or too slow: 503 `service_unavailable` with Retry-After and
the request id, within the request's deadline (never a hang, never a 500); a bug stays a 500.

The app runs with its real engine and pool (tests/committed.py), pointed at real Postgres and
Redis through the faults of tests/faults.py."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import asyncpg
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from httpx import AsyncClient, Response
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.core.deps import RedisDep, SessionDep
from tests.committed import running_app
from tests.faults import FreezableProxy, closed_port, silent_port

LIMIT = 1.0  # request_timeout_seconds here
MARGIN = 1.0  # what the answer may take beyond it on a busy test machine

T = TypeVar("T")


def add_probes(app: FastAPI) -> None:
    @app.get("/probe/db")
    async def database(session: SessionDep, sleep: float = 0.0) -> dict[str, bool]:
        await session.execute(text("SELECT pg_sleep(:sleep)"), {"sleep": sleep})
        return {"ok": True}

    @app.get("/probe/redis")
    async def redis(client: RedisDep) -> dict[str, bool]:
        return {"ok": bool(await client.ping())}

    @app.post("/probe/commit-then-wait")
    async def commit_then_wait(request: Request) -> dict[str, bool]:
        async with request.app.state.database.transaction() as session:
            await session.execute(text("SELECT 1"))
        await asyncio.sleep(LIMIT * 1.5)
        return {"ok": True}

    @app.get("/probe/stream")
    async def stream() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"first,"
            await asyncio.sleep(LIMIT * 1.5)
            yield b"last"

        return StreamingResponse(body())

    @app.get("/probe/bug")
    async def bug(kind: str) -> None:
        if kind == "file":
            raise FileNotFoundError("/etc/secret-config.yaml")
        raise ValueError("not a service problem")


async def timed(call: Awaitable[T]) -> tuple[T, float]:
    started = time.monotonic()
    result = await call
    return result, time.monotonic() - started


def assert_unavailable(response: Response, request_id: str, reason: str) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"]["code"] == "service_unavailable"
    assert body["error"]["details"] == {"reason": reason}
    assert response.headers["retry-after"] == "5"
    assert body["request_id"] == request_id == response.headers["x-request-id"]


def database_at(settings: Settings, port: int) -> str:
    url = make_url(settings.require_database_url()).set(host="127.0.0.1", port=port)
    return url.render_as_string(hide_password=False)


async def get(client: AsyncClient, path: str, request_id: str, **params: Any) -> Response:
    return await client.get(path, params=params, headers={"X-Request-ID": request_id})


async def test_a_database_that_refuses_connections_is_a_503_at_once(settings: Settings) -> None:
    down = database_at(settings, closed_port())
    async with running_app(settings, database_url=down, request_timeout_seconds=LIMIT) as (
        app,
        client,
    ):
        add_probes(app)
        response, took = await timed(get(client, "/probe/db", "db-refused"))

    assert_unavailable(response, "db-refused", "database")
    assert took < MARGIN


async def test_a_database_that_never_answers_is_a_503_within_the_limit(
    settings: Settings,
) -> None:
    with silent_port() as port:
        async with running_app(
            settings, database_url=database_at(settings, port), request_timeout_seconds=LIMIT
        ) as (app, client):
            add_probes(app)
            response, took = await timed(get(client, "/probe/db", "db-silent"))

    assert_unavailable(response, "db-silent", "deadline")
    assert LIMIT <= took < LIMIT + MARGIN


async def test_a_frozen_database_is_a_503_within_the_limit_and_recovered_from(
    settings: Settings,
) -> None:
    """The pool's connections stay open to a server that stopped answering (SIGSTOP): the
    answer may not wait for their cleanup, which lasts longer than the limit."""
    url = make_url(settings.require_database_url())
    proxy = FreezableProxy(url.host or "127.0.0.1", url.port or 5432)
    frozen_app = running_app(
        settings,
        database_url=database_at(settings, proxy.port),
        request_timeout_seconds=LIMIT,
        db_connect_timeout_seconds=2 * LIMIT,
    )
    async with proxy, frozen_app as (app, client):
        add_probes(app)
        assert (await get(client, "/probe/db", "warm")).status_code == 200
        proxy.freeze()
        frozen, took = await timed(get(client, "/probe/db", "db-frozen"))
        new_connection, took_new = await timed(get(client, "/probe/db", "db-frozen-2"))
        proxy.thaw()
        after = await get(client, "/probe/db", "db-back")

    assert_unavailable(frozen, "db-frozen", "deadline")
    assert_unavailable(new_connection, "db-frozen-2", "deadline")
    assert took < LIMIT + MARGIN
    assert took_new < LIMIT + MARGIN
    assert after.status_code == 200, after.text


async def test_a_statement_slower_than_the_limit_is_a_503_and_is_cancelled(
    settings: Settings,
) -> None:
    async with running_app(settings, request_timeout_seconds=LIMIT) as (app, client):
        add_probes(app)
        response, took = await timed(get(client, "/probe/db", "slow", sleep=LIMIT * 5))
        assert_unavailable(response, "slow", "deadline")
        assert took < LIMIT + MARGIN
        # The server stops the statement too (asyncpg sends a cancel request), it does not run
        # on holding a connection.
        assert await _still_sleeping(settings, seconds=LIMIT * 3) == 0


async def test_a_statement_cut_by_the_servers_statement_timeout_is_a_503(
    settings: Settings,
) -> None:
    async with running_app(settings, db_statement_timeout_ms=200) as (app, client):
        add_probes(app)
        response, took = await timed(get(client, "/probe/db", "stmt-timeout", sleep=2))

    assert_unavailable(response, "stmt-timeout", "database")  # SQLSTATE 57014
    assert took < 1.5


async def _still_sleeping(settings: Settings, *, seconds: float) -> int:
    conn = await asyncpg.connect(
        make_url(settings.require_database_url())
        .set(drivername="postgresql")
        .render_as_string(False)
    )
    try:
        deadline = time.monotonic() + seconds
        while True:
            running = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state = 'active' AND query LIKE 'SELECT pg_sleep%'"
            )
            if running == 0 or time.monotonic() > deadline:
                return int(running)
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def test_no_free_connection_in_the_pool_is_a_503(settings: Settings) -> None:
    async with running_app(
        settings,
        request_timeout_seconds=5.0,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout_seconds=0.3,
    ) as (app, client):
        add_probes(app)
        holder = asyncio.create_task(get(client, "/probe/db", "holder", sleep=1.5))
        await asyncio.sleep(0.3)
        response, took = await timed(get(client, "/probe/db", "starved"))
        assert (await holder).status_code == 200

    assert_unavailable(response, "starved", "database")
    assert took < 0.3 + MARGIN


async def test_redis_unavailable_is_a_503(settings: Settings) -> None:
    async with running_app(
        settings, redis_url=f"redis://127.0.0.1:{closed_port()}/0", request_timeout_seconds=LIMIT
    ) as (app, client):
        add_probes(app)
        response = await get(client, "/probe/redis", "redis-down")

    assert_unavailable(response, "redis-down", "redis")


async def test_a_started_response_runs_past_the_limit(settings: Settings) -> None:
    async with running_app(settings, request_timeout_seconds=LIMIT) as (app, client):
        add_probes(app)
        response, took = await timed(get(client, "/probe/stream", "stream"))

    assert response.status_code == 200
    assert response.text == "first,last"
    assert took > LIMIT


async def test_a_committed_write_is_answered_even_past_the_limit(settings: Settings) -> None:
    """A client must learn that its write was stored, not get a 503 for a row that exists."""
    async with running_app(settings, request_timeout_seconds=LIMIT) as (app, client):
        add_probes(app)
        response = await client.post("/probe/commit-then-wait")

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("kind", ["file", "value"])
async def test_a_bug_stays_a_500_with_the_request_id(settings: Settings, kind: str) -> None:
    async with running_app(settings, request_timeout_seconds=LIMIT) as (app, client):
        add_probes(app)
        response = await get(client, "/probe/bug", f"bug-{kind}", kind=kind)

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.json()["request_id"] == f"bug-{kind}" == response.headers["x-request-id"]
    assert "secret-config" not in response.text
