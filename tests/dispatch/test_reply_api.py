"""The reply endpoints: guardrails, the outbox row with the status change, Idempotency-Key."""

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.dispatch.models import OutboundReply
from app.interactions.models import Interaction, InteractionEvent
from app.sellers.models import Seller
from tests import factories

GOOD = "Здравствуйте! Спасибо за отзыв, рады, что товар понравился."


async def test_a_reply_is_queued_with_the_status_change_and_an_event(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    review = await factories.create_interaction(session, seller)

    response = await client.post(
        f"/api/v1/interactions/{review.id}/reply", json={"text": GOOD}, headers=headers
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["state"], body["attempts"], body["action"], body["text"]) == (
        "queued", 0, "answer", GOOD,
    )  # fmt: skip
    await session.refresh(review)
    assert (review.status, review.needs_response) == ("pending_reply", False)
    assert review.reply_pending_until is not None
    kinds = await session.scalars(
        select(InteractionEvent.kind).where(InteractionEvent.interaction_id == review.id)
    )
    assert list(kinds) == ["reply_queued"]
    card = (await client.get(f"/api/v1/interactions/{review.id}", headers=headers)).json()
    assert card["outbox"]["id"] == body["id"]
    got = await client.get(f"/api/v1/replies/{body['id']}", headers=headers)
    assert got.json()["state"] == "queued"


async def test_the_same_idempotency_key_returns_the_same_reply_and_another_body_is_409(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    review = await factories.create_interaction(session, seller)
    keyed = headers | {"Idempotency-Key": "k-1"}
    url = f"/api/v1/interactions/{review.id}/reply"

    first = await client.post(url, json={"text": GOOD}, headers=keyed)
    again = await client.post(url, json={"text": GOOD}, headers=keyed)
    other = await client.post(url, json={"text": GOOD + " И ещё."}, headers=keyed)

    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.json()["id"] == first.json()["id"]
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    ids = await session.scalars(
        select(OutboundReply.id).where(OutboundReply.interaction_id == review.id)
    )
    assert list(ids) == [first.json()["id"]]


async def test_a_blocking_guardrail_is_a_422_with_the_violations_and_queues_nothing(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    review = await factories.create_interaction(session, seller, text="Размер маломерит")

    response = await client.post(
        f"/api/v1/interactions/{review.id}/reply",
        json={"text": "Вам ответил наш бот. Вы сами виноваты."},
        headers=headers,
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "reply_rejected"
    assert {v["code"] for v in error["details"]} == {"ai_mention", "blame"}
    await session.refresh(review)
    assert review.status == "open"
    assert await session.scalar(select(OutboundReply.id)) is None


@pytest.mark.parametrize(
    ("channel", "text", "code", "match"),
    [
        ("review", "Спасибо! Пишите: +7 (900) 123-45-67", "contacts", "+7 (900) 123-45-67"),
        ("question", "Подробнее в т е л е г р а м", "contacts", "т е л е г р а м"),
        ("review", "Пишите на shop@mаil.ru", "contacts", "shop@mаil.ru"),
        (
            "review",
            "Измените, пожалуйста, оценку",
            "rating_solicitation",
            "Измените, пожалуйста, оценку",
        ),
        ("chat", "Вернём деньги на карту", "off_platform_money", "Вернём деньги на карту"),
        ("chat", "Скидка 10% за отзыв", "rating_solicitation", "Скидка 10% за отзыв"),
        ("review", "Ответ подготовлен автоматически", "ai_mention", "подготовлен автоматически"),
        ("review", "Спасибо за отзыв!\u202eЖдём снова", "bidi_control", "\u202e"),
        ("review", "\u200b\u200b\u2060", "empty", None),
    ],
)
async def test_what_the_marketplace_would_punish_is_a_422_and_never_queued(
    session: AsyncSession,
    client: AsyncClient,
    shop: tuple[Seller, dict[str, str]],
    channel: str,
    text: str,
    code: str,
    match: str | None,
) -> None:
    seller, headers = shop
    item = await factories.create_interaction(
        session, seller, channel=channel, text="Какой размер взять?", extra={"reply_sign": "s"}
    )

    response = await client.post(
        f"/api/v1/interactions/{item.id}/reply", json={"text": text}, headers=headers
    )

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "reply_rejected"
    assert [(v["code"], v["severity"], v["match"]) for v in error["details"]] == [
        (code, "error", match)
    ]
    await session.refresh(item)
    assert (item.status, item.needs_response) == ("open", True)
    assert await session.scalar(select(OutboundReply.id)) is None


async def test_chat_blame_only_warns_so_the_message_is_queued(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    chat = await factories.create_interaction(
        session, seller, channel="chat", extra={"reply_sign": "sign-1"}
    )

    response = await client.post(
        f"/api/v1/interactions/{chat.id}/reply",
        json={"text": "Вы сами виноваты, но мы поможем: пришлите фото."},
        headers=headers,
    )

    assert response.status_code == 201, response.text


async def test_double_answers_and_impossible_actions_are_refused(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    review = await factories.create_interaction(session, seller)
    unanswered = await factories.create_interaction(session, seller)
    chat_without_sign = await factories.create_interaction(session, seller, channel="chat")
    chat = await factories.create_interaction(
        session, seller, channel="chat", extra={"reply_sign": "s"}
    )
    url = "/api/v1/interactions/{}/reply"

    first = await client.post(url.format(review.id), json={"text": GOOD}, headers=headers)
    second = await client.post(url.format(review.id), json={"text": GOOD}, headers=headers)
    edit_nothing = await client.post(
        url.format(unanswered.id), json={"text": GOOD, "action": "edit"}, headers=headers
    )
    no_sign = await client.post(
        url.format(chat_without_sign.id), json={"text": GOOD}, headers=headers
    )
    chat_edit = await client.post(
        url.format(chat.id), json={"text": GOOD, "action": "edit"}, headers=headers
    )
    empty = await client.post(url.format(review.id), json={"text": ""}, headers=headers)

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["error"]["details"]["reply_id"] == first.json()["id"]
    assert [r.status_code for r in (edit_nothing, no_sign, chat_edit, empty)] == [422] * 4


async def test_another_sellers_interaction_and_reply_are_404(
    session: AsyncSession,
    client: AsyncClient,
    settings: Settings,
    shop: tuple[Seller, dict[str, str]],
) -> None:
    _seller, headers = shop
    other_seller, other_headers = await factories.operator(
        session, client, "other-replies@example.com", "Other"
    )
    await factories.connect_wildberries(session, other_seller, settings)
    theirs = await factories.create_interaction(session, other_seller)
    queued = await client.post(
        f"/api/v1/interactions/{theirs.id}/reply", json={"text": GOOD}, headers=other_headers
    )

    attempt = await client.post(
        f"/api/v1/interactions/{theirs.id}/reply", json={"text": GOOD}, headers=headers
    )
    read = await client.get(f"/api/v1/replies/{queued.json()['id']}", headers=headers)
    listed = await client.get(f"/api/v1/interactions/{theirs.id}/replies", headers=headers)

    assert (attempt.status_code, read.status_code, listed.status_code) == (404, 404, 404)
    assert queued.status_code == 201
    row = await session.get(Interaction, theirs.id)
    assert row is not None
    assert row.status == "pending_reply"


async def test_bulk_reply_reports_each_item(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    ok = await factories.create_interaction(session, seller)
    blocked = await factories.create_interaction(session, seller)

    response = await client.post(
        "/api/v1/replies/bulk",
        json={
            "items": [
                {"interaction_id": ok.id, "text": GOOD, "idempotency_key": "b-1"},
                {"interaction_id": blocked.id, "text": "Это написал ИИ"},
                {"interaction_id": 999_999_999, "text": GOOD},
            ]
        },
        headers=headers,
    )

    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert items[0]["reply"]["state"] == "queued"
    assert items[0]["error"] is None
    assert items[1]["error"]["code"] == "reply_rejected"
    assert items[2]["error"]["code"] == "not_found"
    await session.refresh(blocked)
    assert blocked.status == "open"
