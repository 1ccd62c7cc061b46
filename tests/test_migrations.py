"""Migrations go up from empty and down to base, and agree with the models."""

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.db import async_url
from app.models import Base
from tests.services import Services, alembic, database_name, recreate_database

pytestmark = pytest.mark.multiprocess


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _inspect(url: str) -> tuple[list[object], set[str]]:
    engine = create_async_engine(async_url(url))
    async with engine.connect() as conn:
        diff = await conn.run_sync(_diff)
        tables = await conn.run_sync(_tables)
    await engine.dispose()
    return diff, tables


@pytest.fixture(scope="module")
def scratch_db(services: Services) -> str:
    return recreate_database(services, database_name("migrations"))


def test_upgrade_from_empty_matches_the_models(scratch_db: str) -> None:
    alembic(scratch_db, "upgrade", "head")

    diff, tables = asyncio.run(_inspect(scratch_db))

    assert diff == []
    assert set(Base.metadata.tables) <= tables


def test_alembic_check_finds_nothing_to_generate(scratch_db: str) -> None:
    alembic(scratch_db, "upgrade", "head")

    result = alembic(scratch_db, "check")

    assert "No new upgrade operations detected" in result.stdout + result.stderr


def test_downgrade_to_base_removes_every_table_and_upgrade_works_again(scratch_db: str) -> None:
    alembic(scratch_db, "upgrade", "head")

    alembic(scratch_db, "downgrade", "base")
    _, after_down = asyncio.run(_inspect(scratch_db))
    alembic(scratch_db, "upgrade", "head")
    diff, after_up = asyncio.run(_inspect(scratch_db))

    assert after_down == {"alembic_version"}
    assert diff == []
    assert set(Base.metadata.tables) <= after_up
