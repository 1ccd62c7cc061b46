"""The card: one statement reads the interaction and everything the operator sees beside it."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from app.sellers.models import Seller
from tests import factories
from tests.links.helpers import make as make_linked

NOW = datetime.now(UTC)


@pytest.fixture
async def shop(session: AsyncSession, client: AsyncClient) -> tuple[Seller, dict[str, str]]:
    return await factories.operator(session, client, "card@example.com", "Shop")


async def test_card_has_messages_context_links_and_sla(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    make = factories.create_interaction
    chat = await make(session, seller, channel="chat", nm_id=5, thread_key="1:c",
                      sla_due_at=NOW + timedelta(minutes=30))  # fmt: skip
    await factories.add_chat_message(session, chat, "Где заказ?", "in")
    await factories.add_chat_message(session, chat, "Уже в пути", "out")
    for n in range(7):
        await make(session, seller, nm_id=5, rating=2, intent="sizing_fit", status="responded",
                   needs_response=False, extra={"answer": {"text": f"Ответ {n}"}},
                   occurred_at=NOW - timedelta(days=1) + timedelta(minutes=n))  # fmt: skip
    await make(session, seller, channel="question", nm_id=5, intent="availability_delivery")
    await make(session, seller, nm_id=6, intent="defect_quality", rating=1)

    body = (await client.get(f"/api/v1/interactions/{chat.id}", headers=headers)).json()

    assert body["interaction"]["id"] == chat.id
    assert [m["text"] for m in body["messages"]] == ["Где заказ?", "Уже в пути"]
    context = body["context"]
    assert context["nm_id"] == 5
    assert len(context["recent"]["review"]) == 5
    assert len(context["recent"]["question"]) == 1
    assert context["recent"]["chat"] == []  # the card's own item is not its context
    assert context["top_intents"][0] == {"intent": "sizing_fit", "count": 7}
    assert [r["text"] for r in context["last_replies"]] == [f"Ответ {n}" for n in (6, 5, 4, 3, 2)]
    assert body["sla"]["state"] == "due_soon"
    assert 0 < body["sla"]["minutes_left"] <= 30
    assert body["links"] == []


async def test_card_and_timeline_are_one_statement_each(
    app: FastAPI,
    session: AsyncSession,
    client: AsyncClient,
    shop: tuple[Seller, dict[str, str]],
) -> None:
    seller, headers = shop
    s = seller.id
    x = await make_linked(session, s, "chat", nm_id=9, customer_id="c1", order_id="o1")
    await make_linked(session, s, "review", hours=5, nm_id=9, customer_id="c1", order_id="o1")
    await make_linked(session, s, "question", hours=-5, nm_id=9)
    sent: list[str] = []

    def record(conn: object, cursor: object, sql: str, *args: object) -> None:
        sent.append(sql)

    engine = (await session.connection()).engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        for path in (f"/interactions/{x.id}", f"/interactions/{x.id}/timeline"):
            sent.clear()
            response = await client.get(f"/api/v1{path}", headers=headers)
            assert response.status_code == 200, response.text
            # Leaving aside the test's savepoints and the bearer token's principal.
            reads = [
                sql for sql in sent
                if sql.startswith(("SELECT", "WITH")) and "FROM users" not in sql
            ]  # fmt: skip
            assert len(reads) == 1, (path, reads)
    finally:
        event.remove(engine, "before_cursor_execute", record)
