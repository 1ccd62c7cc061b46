"""A token the marketplace refuses puts the account into needs_reauth: syncs and reply sends
pause (replies wait, uncounted, never dead), the API says why, an event records it; rotating the
token or a successful check resumes everything."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.config import Settings
from app.dispatch import sender
from app.dispatch.models import OutboundReply
from app.interactions.models import Interaction, InteractionEvent
from app.sellers import reauth
from app.sellers.models import AccountEvent, MarketplaceAccount, Seller
from app.sync import service as sync_service
from app.sync.models import SyncRun
from tests import factories
from tests.marketplace import wire
from tests.sync import sandbox
from tests.sync.sandbox import SandboxSync, published_to_test_redis  # noqa: F401

pytestmark = pytest.mark.usefixtures("published_to_test_redis")

TEXT = "Здравствуйте! Спасибо за отзыв, нам очень приятно. Ждём вас снова."
SHOP = {"seed": 4, "reviews": 30, "questions": 5, "chats": 1, "moderation_seconds": 0}


class Counting(httpx.AsyncBaseTransport):
    """The sandbox as the marketplace, counting the calls that reach it; `revoke_after` list
    reads in, the seller withdraws its token there (the sandbox's revoke knob)."""

    def __init__(self, inner: httpx.ASGITransport, sandbox_id: str) -> None:
        self.inner, self.sandbox_id = inner, sandbox_id
        self.calls = 0
        self.revoke_after: int | None = None

    async def token(self, action: str) -> None:
        url = f"{sandbox.SANDBOX_URL}/_sandbox/sellers/{self.sandbox_id}/token/{action}"
        response = await self.inner.handle_async_request(httpx.Request("POST", url))
        assert response.status_code == 200

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        response = await self.inner.handle_async_request(request)
        if request.url.path == "/api/v1/feedbacks" and self.revoke_after is not None:
            self.revoke_after -= 1
            if self.revoke_after == 0:
                await self.token("revoke")
        return response


@pytest.fixture
async def shop(
    connection: AsyncConnection,
    session: AsyncSession,
    redis: Redis,
    settings: Settings,
    app: FastAPI,
) -> AsyncIterator[tuple[SandboxSync, Counting]]:
    """A synced seller whose marketplace is a counting sandbox, also checking the API's tokens."""
    env = await sandbox.start(connection, session, redis, settings, **SHOP)
    transport = env.deps.transport
    assert isinstance(transport, httpx.ASGITransport)
    counting = Counting(transport, env.sandbox_id)
    env.deps.transport = counting
    app.state.marketplace_transport = counting
    wire(app, settings, sandbox.SANDBOX_URL)
    assert (await env.sync("review")).status == "succeeded"
    yield env, counting
    await env.admin.aclose()


async def _operator(session: AsyncSession, client: AsyncClient, env: SandboxSync) -> Any:
    seller = await session.get(Seller, env.seller_id)
    assert seller is not None
    await factories.create_user(session, seller, "reauth@example.com")
    await session.commit()
    return await factories.login(client, "reauth@example.com")


async def _open_review(env: SandboxSync) -> Interaction:
    async with env.deps.sessionmaker() as session:
        item = await session.scalar(
            select(Interaction)
            .where(Interaction.seller_id == env.seller_id, Interaction.status == "open")
            .order_by(Interaction.id)
            .limit(1)
        )
        assert item is not None
        return item


async def _queued_reply(
    env: SandboxSync, session: AsyncSession, client: AsyncClient
) -> tuple[Any, Interaction, int]:
    """An operator of the shop, an open review and the reply the operator queued to it."""
    headers = await _operator(session, client, env)
    item = await _open_review(env)
    queued = await client.post(
        f"/api/v1/interactions/{item.id}/reply", json={"text": TEXT}, headers=headers
    )
    assert queued.status_code == 201, queued.text
    return headers, item, int(queued.json()["id"])


async def _events(env: SandboxSync) -> list[tuple[str, str, dict[str, Any]]]:
    async with env.deps.sessionmaker() as session:
        rows = await session.scalars(
            select(AccountEvent).where(AccountEvent.seller_id == env.seller_id)
            .order_by(AccountEvent.id)
        )  # fmt: skip
        return [(e.kind, e.source, e.payload) for e in rows]


async def _reply(env: SandboxSync, reply_id: int) -> OutboundReply:
    async with env.deps.sessionmaker() as session:
        row = await session.get(OutboundReply, reply_id)
        assert row is not None
        return row


async def test_a_token_revoked_mid_sync_pauses_syncs_and_replies_until_it_is_rotated(
    shop: tuple[SandboxSync, Counting], session: AsyncSession, client: AsyncClient
) -> None:
    env, marketplace = shop
    headers, item, reply_id = await _queued_reply(env, session, client)

    marketplace.revoke_after = 1  # the unanswered page is served, the answered one refused
    run = await env.sync("review", full=True)

    assert run.status == "partial"
    assert "401" in (run.error or "")
    [(kind, source, payload)] = await _events(env)
    assert (kind, source, payload) == (
        "needs_reauth",
        "sync",
        {"run_id": run.id, "channel": "review"},
    )
    seller = (await client.get("/api/v1/seller", headers=headers)).json()
    [account] = seller["accounts"]
    assert account["status"] == "needs_reauth"
    assert "HTTP 401" in account["status_reason"]
    status = (await client.get("/api/v1/sync/status", headers=headers)).json()
    assert status["account"]["status"] == "needs_reauth"
    refused = await client.post("/api/v1/sync", headers=headers)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "needs_reauth"
    assert refused.json()["error"]["details"]["reason"] == account["status_reason"]

    async with env.deps.sessionmaker() as tick:  # the beat's tick skips the seller
        assert await sync_service.fan_out_due(tick, now=datetime.now(UTC)) == 0
        await tick.commit()

    deps = sender.DispatchDeps(env.deps.sessionmaker, env.deps.redis, env.deps.settings,
                               marketplace)  # fmt: skip
    calls = marketplace.calls
    assert await sender.send(deps, reply_id) == "queued"
    waiting = await _reply(env, reply_id)
    assert marketplace.calls == calls  # nothing was sent with the refused token
    assert (waiting.state, waiting.attempts) == ("queued", 0)
    assert waiting.next_attempt_at > datetime.now(UTC) + timedelta(minutes=30)
    assert "re-authorisation" in (waiting.last_error or "")

    await marketplace.token("restore")  # WB would issue a new token; the sandbox's is the same
    rotated = await client.put(
        f"/api/v1/marketplace-accounts/{account['id']}/token",
        json={"token": env.token},
        headers=headers,
    )

    assert rotated.status_code == 200, rotated.text
    assert (rotated.json()["status"], rotated.json()["status_reason"]) == ("active", None)
    assert [(k, s) for k, s, _ in await _events(env)] == [
        ("needs_reauth", "sync"), ("reauthorised", "rotation")
    ]  # fmt: skip
    assert (await _reply(env, reply_id)).next_attempt_at <= datetime.now(UTC)
    async with env.deps.sessionmaker() as check:
        resumed = await check.scalars(
            select(SyncRun.channel).where(
                SyncRun.seller_id == env.seller_id, SyncRun.status == "queued"
            )
        )
        assert sorted(resumed) == sorted(sync_service.CHANNELS)
    assert await sender.sweep(deps) == 1
    assert await sender.send(deps, reply_id) == "sent"
    sent = await _reply(env, reply_id)
    assert (sent.state, sent.attempts) == ("sent", 1)
    deliveries = (await env.admin.get(f"/_sandbox/sellers/{env.sandbox_id}/deliveries")).json()
    assert deliveries["review"] == {item.external_id: 1}
    async with env.deps.sessionmaker() as check:
        kinds = await check.scalars(
            select(InteractionEvent.kind)
            .where(InteractionEvent.interaction_id == item.id)
            .order_by(InteractionEvent.id)
        )
        assert list(kinds) == ["reply_queued", "reply_paused", "reply_sent", "reply_manual"]


async def test_a_reply_refused_on_send_pauses_the_account_and_a_check_resumes_it(
    shop: tuple[SandboxSync, Counting], session: AsyncSession, client: AsyncClient
) -> None:
    env, marketplace = shop
    headers, item, reply_id = await _queued_reply(env, session, client)
    await marketplace.token("revoke")  # before the send
    deps = sender.DispatchDeps(env.deps.sessionmaker, env.deps.redis, env.deps.settings,
                               marketplace)  # fmt: skip

    assert await sender.send(deps, reply_id) == "queued"
    calls = marketplace.calls
    assert await sender.send(deps, reply_id) == "queued"  # another delivery: still waits

    waiting = await _reply(env, reply_id)
    assert marketplace.calls == calls
    assert (waiting.state, waiting.attempts) == ("queued", 0)
    assert [(k, s, p) for k, s, p in await _events(env)] == [
        ("needs_reauth", "reply", {"reply_id": reply_id})
    ]
    another = await _open_review_other_than(env, item.id)
    refused = await client.post(
        f"/api/v1/interactions/{another.id}/reply", json={"text": TEXT}, headers=headers
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "needs_reauth"

    await marketplace.token("restore")
    account_id = (await _account(env)).id
    checked = await client.post(f"/api/v1/marketplace-accounts/{account_id}/check", headers=headers)

    assert checked.status_code == 200, checked.text
    assert checked.json()["valid"] is True
    assert checked.json()["account"]["status"] == "active"
    assert [(k, s) for k, s, _ in await _events(env)] == [
        ("needs_reauth", "reply"), ("reauthorised", "check")
    ]  # fmt: skip
    assert await sender.send(deps, reply_id) == "sent"


async def _open_review_other_than(env: SandboxSync, interaction_id: int) -> Interaction:
    async with env.deps.sessionmaker() as session:
        item = await session.scalar(
            select(Interaction)
            .where(
                Interaction.seller_id == env.seller_id,
                Interaction.status == "open",
                Interaction.id != interaction_id,
            )
            .limit(1)
        )
        assert item is not None
        return item


async def _account(env: SandboxSync) -> MarketplaceAccount:
    async with env.deps.sessionmaker() as session:
        account = await session.scalar(
            select(MarketplaceAccount).where(MarketplaceAccount.seller_id == env.seller_id)
        )
        assert account is not None
        return account


class FixedWhileInFlight(httpx.AsyncBaseTransport):
    """While a reply's answer call is on its way with the withdrawn token, a sync is refused
    (the account pauses), the seller restores the token and checks it (the account resumes);
    only then does the call's own 401 come back."""

    def __init__(self, marketplace: Counting, fix: Any) -> None:
        self.marketplace, self.fix = marketplace, fix

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.marketplace.handle_async_request(request)
        if request.method != "GET" and response.status_code == 401:
            await self.fix()
        return response


async def test_a_refusal_of_a_call_made_before_the_token_was_fixed_pauses_nothing(
    shop: tuple[SandboxSync, Counting], session: AsyncSession, client: AsyncClient
) -> None:
    env, marketplace = shop
    headers, _, reply_id = await _queued_reply(env, session, client)
    account_id = (await _account(env)).id
    await marketplace.token("revoke")

    async def fix() -> None:
        assert (await env.sync("question")).status == "failed"
        await marketplace.token("restore")
        check = await client.post(
            f"/api/v1/marketplace-accounts/{account_id}/check", headers=headers
        )
        assert check.json()["account"]["status"] == "active", check.text

    deps = sender.DispatchDeps(env.deps.sessionmaker, env.deps.redis, env.deps.settings,
                               FixedWhileInFlight(marketplace, fix))  # fmt: skip

    assert await sender.send(deps, reply_id) == "queued"

    assert (await _account(env)).status == "active"
    assert [(k, s) for k, s, _ in await _events(env)] == [
        ("needs_reauth", "sync"), ("reauthorised", "check")
    ]  # fmt: skip
    waiting = await _reply(env, reply_id)
    assert (waiting.state, waiting.attempts) == ("queued", 0)
    assert waiting.next_attempt_at <= datetime.now(UTC)  # due at once, not in an hour
    assert await sender.send(deps, reply_id) == "sent"


async def test_the_api_loads_what_a_resumed_account_resumes(app: FastAPI) -> None:
    """sellers imports neither dispatch nor sync (they import it): each registers its own
    resume hook, loaded with its router."""
    registered = {f"{hook.__module__}.{hook.__name__}" for hook in reauth.resume_hooks()}
    assert registered >= {
        "app.dispatch.service._release_waiting",
        "app.sync.service._sync_resumed_account",
    }
