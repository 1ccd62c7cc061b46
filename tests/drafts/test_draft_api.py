"""POST /interactions/{id}/draft: the seller's provider, grounding, guardrail warnings, kept."""

import socket

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.egress import Purpose
from app.interactions.models import InteractionEvent
from app.sellers.models import Seller
from tests import egress, factories


@pytest.fixture
async def shop(session: AsyncSession, client: AsyncClient) -> tuple[Seller, dict[str, str]]:
    return await factories.operator(session, client, "drafts@example.com")


async def test_offline_draft_is_grounded_checked_and_kept_on_the_card(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    signature = "С уважением, команда магазина «Уют»."
    for n in range(2):
        await factories.create_interaction(
            session, seller, nm_id=7, rating=5, status="responded", needs_response=False,
            extra={"answer": {"text": f"Спасибо за отзыв! Рады стараться. {signature}"}},
            text=f"Отлично {n}",
        )  # fmt: skip
    review = await factories.create_interaction(
        session, seller, nm_id=7, rating=2, intent="sizing_fit", customer_name="Анна",
        text="Маломерит, пришлось менять на размер больше",
    )  # fmt: skip

    response = await client.post(f"/api/v1/interactions/{review.id}/draft", headers=headers)

    assert response.status_code == 200, response.text
    draft = response.json()
    assert draft["provider"] == "offline"
    assert draft["fallback_reason"] is None
    assert "Анна" in draft["text"]
    assert signature in draft["text"]
    assert any(s["kind"] == "previous_reply" for s in draft["sources"])
    assert [w for w in draft["warnings"] if w["severity"] == "error"] == []
    card = (await client.get(f"/api/v1/interactions/{review.id}", headers=headers)).json()
    assert card["last_draft"]["text"] == draft["text"]
    kinds = await session.scalars(
        select(InteractionEvent.kind).where(InteractionEvent.interaction_id == review.id)
    )
    assert list(kinds) == ["draft_generated"]


async def test_a_failing_remote_provider_falls_back_and_says_why(
    client: AsyncClient, session: AsyncSession, shop: tuple[Seller, dict[str, str]], app: FastAPI
) -> None:
    seller, headers = shop
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    egress.allow(app, Purpose.DRAFT_PROVIDER, f"http://127.0.0.1:{port}")  # a local LLM server
    settings = await client.patch(
        "/api/v1/settings",
        json={"draft_provider": "openai_compat", "draft_model": "m",
              "draft_base_url": f"http://127.0.0.1:{port}/v1", "draft_api_key": "sk-secret-1"},
        headers=headers,
    )  # fmt: skip
    assert settings.status_code == 200, settings.text
    question = await factories.create_interaction(
        session, seller, channel="question", text="Есть ли размер M?"
    )

    response = await client.post(f"/api/v1/interactions/{question.id}/draft", headers=headers)

    assert response.status_code == 200, response.text
    draft = response.json()
    assert draft["provider"] == "offline"
    assert draft["fallback_reason"] == "openai_compat failed: connection failed"
    assert "sk-secret-1" not in response.text


async def test_drafting_another_sellers_interaction_is_404(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    _, headers = shop
    other = await factories.create_seller(session, "Other")
    theirs = await factories.create_interaction(session, other)

    response = await client.post(f"/api/v1/interactions/{theirs.id}/draft", headers=headers)

    assert response.status_code == 404
