"""The contract of app/core/statements.py: one statement per structure of the clauses, executed
with the values of each call's own clauses."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.statements import Templates
from app.interactions import repository
from app.interactions.models import Interaction
from app.interactions.schemas import InteractionFilters
from tests import factories

NOW = datetime.now(UTC)


def _ids_statement(
    templates: Templates, seller_id: int, f: InteractionFilters, limit: int
) -> tuple[Select[Any], dict[str, Any]]:
    where = repository.conditions(seller_id, f, user_id=0, now=NOW)
    top = bindparam(None, limit, Integer, literal_execute=True)
    i = Interaction
    return templates.get(
        [*where, top], lambda: select(i.id).where(*where).order_by(i.id).limit(top), "ids"
    )


async def test_one_statement_per_structure_run_with_each_calls_values(
    session: AsyncSession,
) -> None:
    shop, other = await factories.create_seller(session), await factories.create_seller(session)
    make = factories.create_interaction
    review = await make(session, shop, channel="review", rating=1, nm_id=5)
    chat = await make(session, shop, channel="chat", nm_id=6)
    theirs = await make(session, other, channel="review", rating=1, nm_id=5)
    late = await make(session, shop, sla_due_at=NOW - timedelta(hours=1))
    templates = Templates()
    db = await session.connection()

    async def ids(seller_id: int, limit: int = 10, **filters: object) -> list[int]:
        stmt, values = _ids_statement(templates, seller_id, InteractionFilters(**filters), limit)
        return list((await db.execute(stmt, values)).scalars())

    first, _ = _ids_statement(templates, shop.id, InteractionFilters(channel=["review"]), 10)
    assert await ids(shop.id, channel=["review"]) == [review.id, late.id]
    assert await ids(shop.id, channel=["chat"]) == [chat.id]
    assert await ids(shop.id, channel=["chat", "review"]) == [review.id, chat.id, late.id]
    assert await ids(other.id, channel=["review"]) == [theirs.id]
    assert await ids(shop.id, 1, channel=["review"]) == [review.id]
    assert await ids(shop.id, nm_id=5) == [review.id]
    assert await ids(shop.id, nm_id=6) == [chat.id]
    assert await ids(shop.id, sla="overdue") == [late.id]
    assert await ids(shop.id, sla="on_track") == []
    # Values never decide the structure: one statement for every channel list and limit.
    same, _ = _ids_statement(templates, other.id, InteractionFilters(channel=["chat"]), 3)
    assert same is first
    shapes = [
        InteractionFilters(channel=["review"]),
        InteractionFilters(nm_id=5),
        InteractionFilters(sla="overdue"),
        InteractionFilters(sla="on_track"),
        InteractionFilters(assignee="none"),
        InteractionFilters(assignee="7"),
    ]
    built = {id(_ids_statement(templates, shop.id, f, 10)[0]) for f in shapes}
    assert len(built) == len(shapes)
