from datetime import UTC, datetime, timedelta

from cachetools import TTLCache
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import ApiToken
from app.core import security
from app.core.config import Settings
from tests import factories


async def test_login_returns_a_bearer_token_that_authenticates(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller = await factories.create_seller(session)
    await factories.create_user(session, seller, "Ann@Example.com")

    response = await client.post(
        "/api/v1/auth/login", json={"email": "ann@example.com", "password": factories.PASSWORD}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["email"] == "ann@example.com"
    assert me.json()["seller_id"] == seller.id


async def test_password_is_stored_as_an_argon2_hash(session: AsyncSession) -> None:
    seller = await factories.create_seller(session)
    user = await factories.create_user(session, seller, "hash@example.com")

    assert user.password_hash.startswith("$argon2id$")
    assert factories.PASSWORD not in user.password_hash


async def test_wrong_password_and_unknown_email_get_the_same_401(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller = await factories.create_seller(session)
    await factories.create_user(session, seller, "bob@example.com")

    wrong = await client.post(
        "/api/v1/auth/login", json={"email": "bob@example.com", "password": "nope"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "who@example.com", "password": "nope"}
    )

    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_credentials"
        assert response.json()["request_id"]
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]


async def test_login_with_a_malformed_body_is_a_422_envelope(client: AsyncClient) -> None:
    response = await client.post("/api/v1/auth/login", json={"email": "x"})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert {tuple(d["loc"]) for d in error["details"]} >= {("body", "password")}


async def test_protected_endpoint_rejects_missing_bad_and_expired_tokens(
    session: AsyncSession, client: AsyncClient, settings: Settings
) -> None:
    seller = await factories.create_seller(session)
    user = await factories.create_user(session, seller, "exp@example.com")
    expired = security.create_access_token(
        settings.jwt_secret.get_secret_value(),
        user_id=user.id,
        seller_id=seller.id,
        ttl=timedelta(seconds=-1),
    )
    forged = security.create_access_token(
        "another-secret-another-secret-another-secret",
        user_id=user.id,
        seller_id=seller.id,
        ttl=timedelta(hours=1),
    )

    for headers in (
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": f"Basic {expired}"},
    ):
        response = await client.get("/api/v1/auth/me", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_disabled_user_is_refused_even_with_a_valid_token(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller = await factories.create_seller(session)
    user = await factories.create_user(session, seller, "gone@example.com")
    headers = await factories.login(client, "gone@example.com")
    user.is_active = False
    await session.flush()

    response = await client.get("/api/v1/auth/me", headers=headers)

    assert response.status_code == 401


async def test_a_disabled_user_is_refused_once_the_auth_cache_lets_go(
    app: FastAPI, session: AsyncSession, client: AsyncClient
) -> None:
    now = [0.0]  # the cache's clock, moved by the test instead of sleeping past the TTL
    app.state.principal_cache = TTLCache(maxsize=10, ttl=0.3, timer=lambda: now[0])
    seller = await factories.create_seller(session)
    user = await factories.create_user(session, seller, "leaving@example.com")
    headers = await factories.login(client, "leaving@example.com")
    assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 200
    user.is_active = False
    await session.flush()

    within_ttl = await client.get("/api/v1/auth/me", headers=headers)
    now[0] += 0.35
    after_ttl = await client.get("/api/v1/auth/me", headers=headers)

    assert within_ttl.status_code == 200  # the documented grace: at most auth_cache_seconds
    assert after_ttl.status_code == 401


async def test_api_token_is_shown_once_works_and_stops_working_when_revoked(
    session: AsyncSession, client: AsyncClient
) -> None:
    _, headers = await factories.operator(session, client, "script@example.com")

    created = await client.post("/api/v1/auth/tokens", json={"name": "export"}, headers=headers)
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("sd_")

    listed = await client.get("/api/v1/auth/tokens", headers=headers)
    assert [t["name"] for t in listed.json()["items"]] == ["export"]
    assert token not in listed.text

    by_token = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/auth/me", headers=by_token)).status_code == 200

    revoked = await client.delete(f"/api/v1/auth/tokens/{created.json()['id']}", headers=headers)
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=by_token)).status_code == 401


async def test_expired_api_token_is_refused(session: AsyncSession, client: AsyncClient) -> None:
    _, headers = await factories.operator(session, client, "old@example.com")
    created = await client.post(
        "/api/v1/auth/tokens", json={"name": "old", "expires_in_days": 1}, headers=headers
    )
    row = await session.get(ApiToken, created.json()["id"])
    assert row is not None
    row.expires_at = datetime.now(UTC) - timedelta(minutes=1)
    await session.flush()

    response = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {created.json()['token']}"}
    )

    assert response.status_code == 401


async def test_another_sellers_api_token_cannot_be_revoked(
    session: AsyncSession, client: AsyncClient
) -> None:
    _, alice = await factories.operator(session, client, "alice@example.com", "A")
    _, mallory = await factories.operator(session, client, "mallory@example.com", "M")
    created = await client.post("/api/v1/auth/tokens", json={"name": "a"}, headers=alice)

    response = await client.delete(f"/api/v1/auth/tokens/{created.json()['id']}", headers=mallory)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert len((await client.get("/api/v1/auth/tokens", headers=alice)).json()["items"]) == 1
