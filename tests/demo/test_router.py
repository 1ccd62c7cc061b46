from collections import Counter
from datetime import timedelta

from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.demo import service
from app.interactions import classify
from app.interactions.models import ChatMessage, Interaction
from app.links import service as links_service
from app.worker import enqueue
from tests import factories
from tests.links.helpers import backlog_of

SEED_PATH = "/api/v1/demo/seed"


async def _items(session: AsyncSession, seller_id: int) -> list[Interaction]:
    result = await session.execute(
        select(Interaction)
        .where(Interaction.seller_id == seller_id)
        .order_by(Interaction.channel, Interaction.external_id)
        .execution_options(populate_existing=True)
    )
    return list(result.scalars())


async def _messages(session: AsyncSession, seller_id: int) -> list[ChatMessage]:
    result = await session.execute(
        select(ChatMessage).where(ChatMessage.seller_id == seller_id).order_by(ChatMessage.sent_at)
    )
    return list(result.scalars())


async def test_seed_creates_a_varied_dozen(session: AsyncSession, client: AsyncClient) -> None:
    seller, headers = await factories.operator(session, client, "demo@example.com")

    response = await client.post(SEED_PATH, headers=headers)

    assert response.status_code == 200, response.text
    assert response.json() == {"created": 12, "existing": 0, "items": 12}
    items = await _items(session, seller.id)
    assert len(items) == 12
    assert {i.source for i in items} == {"demo"}
    assert {i.marketplace for i in items} == {"wildberries"}
    assert all(i.external_id.startswith(f"demo-{i.channel}-") for i in items)
    assert Counter(i.channel for i in items) == {"review": 6, "question": 3, "chat": 3}

    reviews = [i for i in items if i.channel == "review"]
    assert {r.rating for r in reviews} == {1, 2, 3, 4, 5}
    assert any(r.pros and r.cons for r in reviews)
    assert any(r.photos_count > 1 for r in reviews)
    assert len({i.nm_id for i in items}) >= 4
    assert all(i.product_name for i in items)

    statuses = Counter(i.status for i in items)
    assert statuses["open"] >= 6
    assert statuses["responded"] >= 3
    assert Counter(i.priority for i in items)["urgent"] >= 2
    assert len({i.intent for i in items}) >= 4
    questions = [i for i in items if i.channel == "question"]
    assert len({q.intent for q in questions}) == 3
    assert all(i.needs_response == (i.status == "open") for i in items if i.rating != 5)
    stars_only = next(r for r in reviews if not r.text)
    assert stars_only.needs_response is False  # 5★ without words: nothing to answer
    for item in items:  # SLA from the classifier for what waits on us
        if item.status == "open" and item.channel != "chat":
            target = classify.sla_minutes({}, item.channel, item.intent)
            assert item.sla_due_at == item.occurred_at + timedelta(minutes=target)
    answered = [i for i in items if i.status == "responded"]
    assert all(i.first_response_at and i.first_response_at > i.occurred_at for i in answered)
    assert all(i.extra["answer"]["text"] for i in answered if i.channel in ("review", "question"))

    chats = {i.id: i for i in items if i.channel == "chat"}
    messages = await _messages(session, seller.id)
    assert {m.interaction_id for m in messages} == set(chats)
    assert {m.direction for m in messages} == {"in", "out"}
    assert len(messages) == 7
    for chat in chats.values():
        last = [m for m in messages if m.interaction_id == chat.id][-1]
        assert (chat.status == "open") == (last.direction == "in")
        assert chat.thread_key == chat.external_id
        assert chat.order_id


async def test_seed_is_idempotent(session: AsyncSession, client: AsyncClient) -> None:
    seller, headers = await factories.operator(session, client, "again@example.com")
    await client.post(SEED_PATH, headers=headers)
    first = {i.external_id: (i.id, i.updated_at) for i in await _items(session, seller.id)}

    response = await client.post(SEED_PATH, headers=headers)

    assert response.status_code == 200
    assert response.json() == {"created": 0, "existing": 12, "items": 12}
    again = {i.external_id: (i.id, i.updated_at) for i in await _items(session, seller.id)}
    assert again == first  # nothing rewritten either
    assert len(await _messages(session, seller.id)) == 7


async def test_seed_leaves_the_operators_work_alone_and_fills_gaps(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller, headers = await factories.operator(session, client, "worked@example.com")
    await client.post(SEED_PATH, headers=headers)
    items = await _items(session, seller.id)
    handled = next(i for i in items if i.external_id == "demo-review-1")
    handled.status, handled.needs_response = "closed", False
    gone = next(i for i in items if i.external_id == "demo-chat-1")
    await session.delete(gone)
    await session.commit()

    response = await client.post(SEED_PATH, headers=headers)

    assert response.json() == {"created": 1, "existing": 11, "items": 12}
    items = await _items(session, seller.id)
    assert next(i for i in items if i.external_id == "demo-review-1").status == "closed"
    chat = next(i for i in items if i.external_id == "demo-chat-1")
    assert len([m for m in await _messages(session, seller.id) if m.interaction_id == chat.id]) == 2


async def test_each_seller_gets_its_own_dozen(session: AsyncSession, client: AsyncClient) -> None:
    alice, alice_headers = await factories.operator(session, client, "alice@example.com", "A")
    bob, bob_headers = await factories.operator(session, client, "bob@example.com", "B")

    assert (await client.post(SEED_PATH, headers=alice_headers)).json()["created"] == 12
    assert (await client.post(SEED_PATH, headers=bob_headers)).json()["created"] == 12
    assert (await client.post(SEED_PATH, headers=alice_headers)).json()["created"] == 0

    alices, bobs = await _items(session, alice.id), await _items(session, bob.id)
    assert len(alices) == len(bobs) == 12
    assert {i.external_id for i in alices} == {i.external_id for i in bobs}
    assert not {i.id for i in alices} & {i.id for i in bobs}
    bobs_chats = {i.id for i in bobs if i.channel == "chat"}
    assert {m.interaction_id for m in await _messages(session, bob.id)} == bobs_chats
    assert len(await _messages(session, alice.id)) == 7
    count = await session.execute(select(func.count()).select_from(Interaction))
    assert count.scalar_one() >= 24


async def test_seed_follows_the_sellers_sla_targets(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller, headers = await factories.operator(session, client, "sla-demo@example.com")
    patch = {"sla_targets": {"question": {"default": 30}, "chat": {"default": 15}}}
    assert (await client.patch("/api/v1/settings", json=patch, headers=headers)).status_code == 200

    await client.post(SEED_PATH, headers=headers)

    items = await _items(session, seller.id)
    question = next(i for i in items if i.external_id == "demo-question-1")
    assert question.sla_due_at == question.occurred_at + timedelta(minutes=30)
    waiting_chat = next(i for i in items if i.external_id == "demo-chat-1")
    assert waiting_chat.sla_due_at == waiting_chat.occurred_at + timedelta(minutes=15)


async def test_new_demo_items_are_queued_for_linking(session: AsyncSession) -> None:
    seller = await factories.create_seller(session, "Links")

    result = await service.seed(session, seller.id)

    assert result.created == 12
    items = sorted(i.id for i in await _items(session, seller.id))
    assert await backlog_of(session, seller.id) == items
    queued = session.info.get(enqueue.AFTER_COMMIT_ONCE, [])
    assert [(task, args) for _, _, task, args in queued] == [
        (links_service.RECOMPUTE_TASK, (seller.id,))
    ]
    enqueue.drop_deferred(session)


async def test_seed_needs_a_caller(client: AsyncClient) -> None:
    assert (await client.post(SEED_PATH)).status_code == 401
