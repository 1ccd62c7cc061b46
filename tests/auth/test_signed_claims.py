"""A signed access token is still input: claims that are not ids are refused with a 401, never
sent to the database."""

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import security
from app.core.config import Settings
from tests import factories

HOSTILE_IDS: list[Any] = [2**63, -(2**63) - 1, 10**40, -1, 0, "12abc", "", None, [1], {"id": 1}]


def _token(settings: Settings, **claims: Any) -> dict[str, str]:
    now = datetime.now(UTC)
    claims = {"iat": now, "exp": now + timedelta(hours=1), **claims}
    secret = settings.jwt_secret.get_secret_value()
    return {"Authorization": f"Bearer {jwt.encode(claims, secret, security.JWT_ALGORITHM)}"}


@pytest.mark.parametrize("claim", ["sub", "sid"])
async def test_a_signed_token_whose_ids_are_not_ids_is_a_401(
    session: AsyncSession, client: AsyncClient, settings: Settings, claim: str
) -> None:
    seller = await factories.create_seller(session)
    user = await factories.create_user(session, seller, f"claims-{claim}@example.com")
    real = {"sub": str(user.id), "sid": seller.id}
    assert (await client.get("/api/v1/auth/me", headers=_token(settings, **real))).is_success

    for value in HOSTILE_IDS:
        headers = _token(settings, **(real | {claim: value}))
        response = await client.get("/api/v1/auth/me", headers=headers)
        assert response.status_code == 401, value
        assert response.json()["error"]["code"] == "unauthorized"
