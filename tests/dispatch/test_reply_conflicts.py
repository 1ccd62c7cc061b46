"""Replies only where they can and should be sent: an item the marketplace already shows an
answer for takes only an explicit edit, and a seller without a working marketplace account gets a
409 saying why — in both cases nothing is queued and the item keeps its status."""

from itertools import product
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.dispatch.models import OutboundReply
from app.interactions.models import Interaction
from app.sellers.models import Seller
from tests import factories

TEXT = "Здравствуйте! Спасибо, что написали, мы разобрались с вашим вопросом."


def _answer(state: str | None, editable: bool = True) -> dict[str, Any]:
    return {"text": "Спасибо за отзыв!", "state": state, "editable": editable}


# (what the marketplace shows, the item's status, its synced answer)
ANSWERED = {
    "answered and shown": ("responded", _answer("wbRu")),
    "answer in moderation": ("pending_reply", _answer("reviewRequired")),
    "responded, answer not synced": ("responded", None),
    "question answered (no state)": ("responded", {"text": "Да, подходит.", "editable": True}),
}
NOT_ANSWERED = {
    "open": ("open", None),
    "answer rejected by moderation": ("open", _answer("rejected")),
    "closed by the operator": ("closed", None),
}


async def _reply(
    client: AsyncClient, headers: dict[str, str], item: Interaction, action: str = "answer"
) -> Any:
    return await client.post(
        f"/api/v1/interactions/{item.id}/reply",
        json={"text": TEXT, "action": action},
        headers=headers,
    )


async def _queued(session: AsyncSession, item: Interaction) -> int:
    stmt = select(func.count()).where(OutboundReply.interaction_id == item.id)
    return int(await session.scalar(stmt) or 0)


@pytest.mark.parametrize(
    ("channel", "case"), list(product(["review", "question"], [*ANSWERED, *NOT_ANSWERED]))
)
async def test_an_answer_to_an_answered_item_is_409_and_an_edit_is_accepted(
    session: AsyncSession,
    client: AsyncClient,
    shop: tuple[Seller, dict[str, str]],
    channel: str,
    case: str,
) -> None:
    seller, headers = shop
    status, answer = ANSWERED.get(case) or NOT_ANSWERED[case]
    item = await factories.create_interaction(
        session, seller, channel=channel, status=status, extra={"answer": answer}
    )

    answered = await _reply(client, headers, item)

    if case in NOT_ANSWERED:
        assert answered.status_code == 201, answered.text
        return
    assert answered.status_code == 409, answered.text
    assert answered.json()["error"]["code"] == "already_answered"
    await session.refresh(item)
    assert (item.status, await _queued(session, item)) == (status, 0)
    edited = await _reply(client, headers, item, action="edit")
    assert edited.status_code == 201, edited.text
    assert edited.json()["action"] == "edit"


async def test_an_answer_the_marketplace_no_longer_lets_edit_is_409(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    item = await factories.create_interaction(
        session, seller, status="responded", extra={"answer": _answer("wbRu", editable=False)}
    )

    response = await _reply(client, headers, item, action="edit")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "answer_not_editable"
    assert await _queued(session, item) == 0


async def test_a_chat_the_seller_answered_still_takes_another_message(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    chat = await factories.create_interaction(
        session, seller, channel="chat", status="responded", extra={"reply_sign": "s"}
    )

    assert (await _reply(client, headers, chat)).status_code == 201


ACCOUNTS = {
    "no account": None,
    "disconnected account": {"is_active": False},
    "token refused": {
        "status": "needs_reauth",
        "status_reason": "the marketplace rejected the token (HTTP 401)",
    },
}


@pytest.mark.parametrize("case", ACCOUNTS)
@pytest.mark.parametrize("channel", ["review", "question", "chat"])
async def test_a_seller_without_a_working_account_gets_409_with_the_reason(
    session: AsyncSession,
    client: AsyncClient,
    settings: Settings,
    case: str,
    channel: str,
) -> None:
    seller, headers = await factories.operator(
        session, client, f"{case}@example.com".replace(" ", "-")
    )
    account = ACCOUNTS[case]
    if account is not None:
        row = await factories.connect_wildberries(session, seller, settings)
        for name, value in account.items():
            setattr(row, name, value)
        await session.flush()
    item = await factories.create_interaction(
        session, seller, channel=channel, extra={"reply_sign": "s"}
    )

    response = await _reply(client, headers, item)
    bulk = await client.post(
        "/api/v1/replies/bulk",
        json={"items": [{"interaction_id": item.id, "text": TEXT}]},
        headers=headers,
    )

    code = "needs_reauth" if case == "token refused" else "no_marketplace_account"
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == code
    assert bulk.json()["items"][0]["error"]["code"] == code
    if case == "token refused":
        assert "HTTP 401" in response.json()["error"]["message"]
        assert response.json()["error"]["details"]["reason"] == account["status_reason"]
    await session.refresh(item)
    assert (item.status, await _queued(session, item)) == ("open", 0)
