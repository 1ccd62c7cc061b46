"""API tokens cannot mint tokens (so there is no chain to revoke), and revocation is immediate."""

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.service import principal_cache
from app.core.config import Settings
from tests import factories


async def _mint(client: AsyncClient, headers: dict[str, str], name: str) -> dict[str, str]:
    created = await client.post("/api/v1/auth/tokens", json={"name": name}, headers=headers)
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['token']}", "id": str(created.json()["id"])}


def _bearer(token: dict[str, str]) -> dict[str, str]:
    return {"Authorization": token["Authorization"]}


async def test_an_api_token_cannot_create_a_token_and_a_session_token_can(
    session: AsyncSession, client: AsyncClient
) -> None:
    _, login = await factories.operator(session, client, "mint@example.com")
    api_token = await _mint(client, login, "script")

    by_api_token = await client.post(
        "/api/v1/auth/tokens", json={"name": "child"}, headers=_bearer(api_token)
    )
    by_session = await client.post("/api/v1/auth/tokens", json={"name": "second"}, headers=login)

    assert by_api_token.status_code == 403
    body = by_api_token.json()
    assert body["error"]["code"] == "api_token_cannot_mint"
    assert body["request_id"] == by_api_token.headers["x-request-id"]
    assert "token" not in body
    assert by_session.status_code == 201
    listed = await client.get("/api/v1/auth/tokens", headers=login)
    assert [t["name"] for t in listed.json()["items"]] == ["script", "second"]


async def test_a_revoked_api_token_is_refused_on_the_next_request_while_sessions_are_cached(
    app: FastAPI, session: AsyncSession, client: AsyncClient
) -> None:
    assert app.state.principal_cache is not None  # the default: session tokens are cached
    _, login = await factories.operator(session, client, "revoke@example.com")
    api_token = await _mint(client, login, "script")
    assert (await client.get("/api/v1/auth/me", headers=_bearer(api_token))).status_code == 200
    assert api_token["Authorization"].removeprefix("Bearer ") not in app.state.principal_cache

    revoked = await client.delete(f"/api/v1/auth/tokens/{api_token['id']}", headers=login)
    after = await client.get("/api/v1/auth/me", headers=_bearer(api_token))

    assert revoked.status_code == 204
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "unauthorized"


async def test_revoking_one_token_leaves_the_others_working(
    session: AsyncSession, client: AsyncClient
) -> None:
    _, login = await factories.operator(session, client, "many@example.com")
    first, second, third = [await _mint(client, login, name) for name in ("a", "b", "c")]

    await client.delete(f"/api/v1/auth/tokens/{second['id']}", headers=login)

    statuses = [
        (await client.get("/api/v1/auth/me", headers=h)).status_code
        for h in (_bearer(first), _bearer(second), _bearer(third), login)
    ]
    assert statuses == [200, 401, 200, 200]
    listed = await client.get("/api/v1/auth/tokens", headers=login)
    assert [t["name"] for t in listed.json()["items"]] == ["a", "c"]


async def test_an_api_token_can_revoke_itself(session: AsyncSession, client: AsyncClient) -> None:
    _, login = await factories.operator(session, client, "leaked@example.com")
    leaked = await _mint(client, login, "leaked")

    revoked = await client.delete(f"/api/v1/auth/tokens/{leaked['id']}", headers=_bearer(leaked))

    assert revoked.status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=_bearer(leaked))).status_code == 401


async def test_a_deactivated_users_api_tokens_stop_at_once_despite_the_session_cache(
    app: FastAPI, session: AsyncSession, client: AsyncClient
) -> None:
    assert app.state.principal_cache is not None
    seller = await factories.create_seller(session)
    user = await factories.create_user(session, seller, "quit@example.com")
    login = await factories.login(client, "quit@example.com")
    tokens = [await _mint(client, login, name) for name in ("a", "b")]
    for token in tokens:
        assert (await client.get("/api/v1/auth/me", headers=_bearer(token))).status_code == 200

    user.is_active = False
    await session.flush()

    for token in tokens:
        assert (await client.get("/api/v1/auth/me", headers=_bearer(token))).status_code == 401


async def test_a_deactivated_users_session_token_stops_when_the_cache_is_off(
    app: FastAPI, session: AsyncSession, client: AsyncClient, settings: Settings
) -> None:
    app.state.principal_cache = principal_cache(
        settings.model_copy(update={"auth_cache_seconds": 0})
    )
    assert app.state.principal_cache is None
    seller = await factories.create_seller(session)
    user = await factories.create_user(session, seller, "fired@example.com")
    login = await factories.login(client, "fired@example.com")
    api_token = await _mint(client, login, "script")
    assert (await client.get("/api/v1/auth/me", headers=login)).status_code == 200

    user.is_active = False
    await session.flush()

    assert (await client.get("/api/v1/auth/me", headers=login)).status_code == 401
    assert (await client.get("/api/v1/auth/me", headers=_bearer(api_token))).status_code == 401
    refused = await client.post("/api/v1/auth/tokens", json={"name": "x"}, headers=login)
    assert refused.status_code == 401
