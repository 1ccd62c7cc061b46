from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.security import SecretBox
from app.sellers.models import MarketplaceAccount
from tests import factories

WB_TOKEN = "eyJhbGciOiJFUzI1NiIsImtpZCI6IndiLXNlbGxlciJ9.secret-marketplace-token"


async def _connect(client: AsyncClient, headers: dict[str, str], token: str = WB_TOKEN) -> int:
    response = await client.post(
        "/api/v1/marketplace-accounts",
        json={"marketplace": "wildberries", "name": "Main", "token": token},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def test_marketplace_token_is_stored_encrypted_and_never_returned(
    session: AsyncSession, client: AsyncClient, app: FastAPI
) -> None:
    seller, headers = await factories.operator(session, client, "owner@example.com")

    account_id = await _connect(client, headers)

    row = (
        await session.execute(select(MarketplaceAccount).where(MarketplaceAccount.id == account_id))
    ).scalar_one()
    assert row.seller_id == seller.id
    assert WB_TOKEN not in row.token_encrypted
    box: SecretBox = app.state.secret_box
    assert box.decrypt(row.token_encrypted) == WB_TOKEN
    for path in ("/api/v1/marketplace-accounts", f"/api/v1/marketplace-accounts/{account_id}"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 200
        assert WB_TOKEN not in response.text
        assert "token_encrypted" not in response.text
        assert row.token_encrypted not in response.text


async def test_rotating_the_token_re_encrypts_it(
    session: AsyncSession, client: AsyncClient, app: FastAPI
) -> None:
    _, headers = await factories.operator(session, client, "rot@example.com")
    account_id = await _connect(client, headers)

    response = await client.put(
        f"/api/v1/marketplace-accounts/{account_id}/token",
        json={"token": "a-brand-new-token-value"},
        headers=headers,
    )

    assert response.status_code == 200
    assert response.json()["token_rotated_at"] is not None
    assert "a-brand-new-token-value" not in response.text
    row = await session.get(MarketplaceAccount, account_id)
    assert row is not None
    await session.refresh(row)
    assert app.state.secret_box.decrypt(row.token_encrypted) == "a-brand-new-token-value"


async def test_second_account_for_the_same_marketplace_is_a_409(
    session: AsyncSession, client: AsyncClient
) -> None:
    _, headers = await factories.operator(session, client, "dup@example.com")
    account_id = await _connect(client, headers)

    response = await client.post(
        "/api/v1/marketplace-accounts",
        json={"marketplace": "wildberries", "token": "another-token-123"},
        headers=headers,
    )

    assert response.status_code == 409
    assert response.json()["error"]["details"] == {"account_id": account_id}


async def test_unknown_marketplace_and_short_token_are_422(
    session: AsyncSession, client: AsyncClient
) -> None:
    _, headers = await factories.operator(session, client, "bad@example.com")

    for body in ({"marketplace": "amazon", "token": "long-enough-token"},
                 {"marketplace": "ozon", "token": "x7q9z"}):  # fmt: skip
        response = await client.post("/api/v1/marketplace-accounts", json=body, headers=headers)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"
        assert body["token"] not in response.text


async def test_another_sellers_account_answers_404_on_every_endpoint(
    session: AsyncSession, client: AsyncClient
) -> None:
    _, alice = await factories.operator(session, client, "alice@example.com", "Alice shop")
    _, mallory = await factories.operator(session, client, "mallory@example.com", "Mallory shop")
    account_id = await _connect(client, alice)
    base = f"/api/v1/marketplace-accounts/{account_id}"

    attempts = [
        await client.get(base, headers=mallory),
        await client.put(f"{base}/token", json={"token": "stolen-token-1"}, headers=mallory),
        await client.delete(base, headers=mallory),
    ]

    for response in attempts:
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert (await client.get("/api/v1/marketplace-accounts", headers=mallory)).json()["items"] == []
    still_there = await client.get(base, headers=alice)
    assert still_there.status_code == 200
    assert still_there.json()["token_rotated_at"] is None


async def test_seller_endpoint_shows_the_callers_own_seller(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller, headers = await factories.operator(session, client, "me@example.com", "My shop")

    response = await client.get("/api/v1/seller", headers=headers)

    assert response.status_code == 200
    assert response.json()["id"] == seller.id
    assert response.json()["name"] == "My shop"


async def test_disconnect_removes_the_account(session: AsyncSession, client: AsyncClient) -> None:
    _, headers = await factories.operator(session, client, "del@example.com")
    account_id = await _connect(client, headers)

    deleted = await client.delete(f"/api/v1/marketplace-accounts/{account_id}", headers=headers)

    assert deleted.status_code == 204
    gone = await client.get(f"/api/v1/marketplace-accounts/{account_id}", headers=headers)
    assert gone.status_code == 404
