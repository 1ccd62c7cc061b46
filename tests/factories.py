"""Test data built through the same services the app uses."""

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth_service
from app.auth.models import User
from app.sellers import service as sellers_service
from app.sellers.models import Seller

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
