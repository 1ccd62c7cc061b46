"""Test data built through the same services the app uses."""

from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth_service
from app.auth.models import User
from app.core.config import Settings
from app.core.security import SecretBox
from app.interactions.models import ChatMessage, Interaction
from app.sellers import service as sellers_service
from app.sellers.models import MarketplaceAccount, Seller

PASSWORD = "correct horse battery"


async def create_seller(session: AsyncSession, name: str = "Shop") -> Seller:
    return await sellers_service.create_seller(session, name)


async def create_user(
    session: AsyncSession, seller: Seller, email: str, password: str = PASSWORD
) -> User:
    return await auth_service.create_user(
        session, seller_id=seller.id, email=email, password=password
    )


async def login(client: AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def operator(
    session: AsyncSession, client: AsyncClient, email: str, shop: str = "Shop"
) -> tuple[Seller, dict[str, str]]:
    """A seller with one logged-in operator: (seller, auth headers)."""
    seller = await create_seller(session, shop)
    await create_user(session, seller, email)
    return seller, await login(client, email)


async def connect_wildberries(
    session: AsyncSession,
    seller: Seller,
    settings: Settings,
    token: str = "wb-0123456789",  # noqa: S107
) -> MarketplaceAccount:
    """An active Wildberries account, stored without asking the marketplace."""
    box = SecretBox(settings.secrets_key.get_secret_value())
    return await sellers_service.connect_account(
        session, box, seller_id=seller.id, marketplace="wildberries", name="", token=token
    )


async def create_interaction(session: AsyncSession, seller: Seller, **fields: Any) -> Interaction:
    """An interaction with sensible defaults; override any column."""
    global _sequence
    _sequence += 1
    values: dict[str, Any] = {
        "marketplace": "wildberries",
        "channel": "review",
        "external_id": f"ext-{_sequence}",
        "status": "open",
        "priority": "normal",
        "needs_response": True,
        "source": "wb_api",
        "occurred_at": datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=_sequence),
        "text": "Хороший товар",
        "extra": {},
    }
    row = Interaction(seller_id=seller.id, **(values | fields))
    session.add(row)
    await session.flush()
    return row


_sequence = 0


async def add_chat_message(
    session: AsyncSession, chat: Interaction, text: str, direction: str
) -> ChatMessage:
    global _sequence
    _sequence += 1
    message = ChatMessage(
        seller_id=chat.seller_id,
        interaction_id=chat.id,
        external_id=f"msg-{_sequence}",
        direction=direction,
        text=text,
        attachments=[],
        sent_at=chat.occurred_at + timedelta(minutes=_sequence),
    )
    session.add(message)
    await session.flush()
    return message
