"""Request sessions: reads run statement by statement (autocommit), writes in one transaction."""

import asyncio

import pytest
from sqlalchemy import text
from starlette.requests import Request

from app.core.config import Settings
from app.core.deps import get_session
from app.main import create_app


@pytest.mark.parametrize(("method", "one_transaction"), [("GET", False), ("POST", True)])
async def test_only_writing_requests_hold_a_transaction(
    settings: Settings, method: str, one_transaction: bool
) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        request = Request({"type": "http", "method": method, "app": app, "headers": []})
        sessions = get_session(request)
        session = await anext(sessions)
        first = await session.scalar(text("SELECT now()"))
        await asyncio.sleep(0.01)
        second = await session.scalar(text("SELECT now()"))
        await sessions.aclose()

    # now() is the start of the current transaction: constant within one, fresh per statement.
    assert (first == second) is one_transaction
