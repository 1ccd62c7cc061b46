"""The API on a database of the test's own whose transactions really commit, with its own
engine, pool and middlewares as in production: for what the rolled-back test transaction cannot
show (concurrent requests and background work, publishing after commit, a database that stops
answering)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.main import create_app
from tests.services import Services, alembic, recreate_database_async


@asynccontextmanager
async def own_database(services: Services, settings: Settings, name: str) -> AsyncIterator[str]:
    """A migrated database `name` (dropped afterwards); its URL."""
    url = await recreate_database_async(services, name)
    alembic(url, "upgrade", "head")
    try:
        yield url
    finally:
        conn = await asyncpg.connect(
            make_url(services.admin_url).set(drivername="postgresql").render_as_string(False)
        )
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@asynccontextmanager
async def running_app(
    settings: Settings, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
    """The app with `overrides` applied to `settings`, started, and a client for it."""
    app = create_app(settings.model_copy(update=overrides))
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app, raise_app_exceptions=False)
        async with AsyncClient(transport=transport, base_url="http://test") as client:
            yield app, client
