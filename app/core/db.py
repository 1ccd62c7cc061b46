"""Async engine and session factories. The boundary (request, task) owns the transaction."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import orjson
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core import deadline
from app.core.config import Settings


def async_url(url: str) -> URL:
    """Accept plain `postgresql://` URLs (as docker and psql use) and select asyncpg."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed


# The client gives up on a statement this long after the server's own statement_timeout should
# have cut it: only a server that answers nothing at all (frozen, or the network gone) gets here.
COMMAND_TIMEOUT_MARGIN_SECONDS = 5.0


def create_engine(
    settings: Settings, *, pool_size: int | None = None, pre_ping: bool = True
) -> AsyncEngine:
    """`pre_ping=False` (the API) saves a round trip per request; a connection the server
    dropped then fails one request, which invalidates the pool, and connections are recycled
    after 30 minutes anyway.

    Every wait is bounded: connecting (`timeout`), a statement (the server's statement_timeout,
    then asyncpg's `command_timeout`), and a free connection from the pool (`pool_timeout`)."""
    command_timeout = settings.db_statement_timeout_ms / 1000 + COMMAND_TIMEOUT_MARGIN_SECONDS
    return create_async_engine(
        async_url(settings.require_database_url()),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={
            "server_settings": server_settings(settings),
            "timeout": settings.db_connect_timeout_seconds,
            "command_timeout": command_timeout,
        },
    )


def server_settings(settings: Settings) -> dict[str, str]:
    """What every connection of ours sets at connect time (the benchmark's own connections too,
    so its EXPLAIN shows the plans the app gets)."""
    return {
        "statement_timeout": str(settings.db_statement_timeout_ms),
        # Timestamps Postgres renders into JSON (the card's context) end in Z, whatever the
        # server's default zone.
        "timezone": "UTC",
        # Many small statements at once: a parallel plan's workers start in milliseconds and
        # take cores the other requests need (a search stage chose them: 3 ms more each).
        "max_parallel_workers_per_gather": "0",
        "application_name": "sellerdesk",
    }


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


class Database:
    """How the API's requests reach Postgres (tests put one bound to their own transaction on
    `app.state.database`).

    Reads run in autocommit: no BEGIN/COMMIT round trips for requests that only read, and each
    statement still sees a consistent snapshot of its own."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._reads = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._sessions = create_sessionmaker(engine)
        self._read_sessions = create_sessionmaker(self._reads)

    def transaction(self, *, read_only: bool = False) -> AbstractAsyncContextManager[AsyncSession]:
        """A session committed when the block ends cleanly (`transaction`); once a writing one
        has committed, the request's deadline no longer applies (app/core/deadline.py)."""
        if read_only:
            return transaction(self._read_sessions)
        return transaction(self._sessions, on_commit=deadline.settle)

    def reader(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A pooled connection in autocommit, for Core reads."""
        return self._reads.connect()


SessionHook = Callable[[AsyncSession], Awaitable[None]]
_after_commit: list[SessionHook] = []
_after_rollback: list[Callable[[AsyncSession], None]] = []


def on_transaction_end(*, commit: SessionHook, rollback: Callable[[AsyncSession], None]) -> None:
    """Run `commit` after every `transaction` commits and `rollback` after one rolls back.

    The worker's enqueue (app/worker/enqueue.py) registers itself here, so tasks deferred on a
    session are published only once their rows are committed, without core knowing the worker.
    """
    _after_commit.append(commit)
    _after_rollback.append(rollback)


@asynccontextmanager
async def transaction(
    maker: async_sessionmaker[AsyncSession], *, on_commit: Callable[[], None] | None = None
) -> AsyncIterator[AsyncSession]:
    """One session, committed when the block ends cleanly and rolled back otherwise; the hooks
    registered with `on_transaction_end` run after either."""
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            for dropped in _after_rollback:
                dropped(session)
            await session.rollback()
            raise
        if on_commit is not None:
            on_commit()
        for committed in _after_commit:
            await committed(session)
