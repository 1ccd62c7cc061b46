"""The dispatcher against the marketplace sandbox: delivered once, recorded, retried, swept."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth.service import Credential, Principal
from app.core import locks
from app.core.config import Settings
from app.dispatch import repository, sender, service
from app.dispatch.models import OutboundReply
from app.dispatch.schemas import ReplyCreate
from app.drafts.models import Draft
from app.interactions.models import Interaction, InteractionEvent
from app.sellers.models import Seller
from tests import factories
from tests.sync import sandbox
from tests.sync.sandbox import SandboxSync

TEXT = "Здравствуйте! Спасибо, что написали. Уточните, пожалуйста, размер заказа."


@dataclass
class Outbox:
    env: SandboxSync
    deps: sender.DispatchDeps
    principal: Principal

    async def item(self, channel: str) -> Interaction:
        async with self.deps.sessionmaker() as session:
            row = await session.scalar(
                select(Interaction)
                .where(
                    Interaction.seller_id == self.principal.seller_id,
                    Interaction.channel == channel,
                    Interaction.status == "open",
                )
                .order_by(Interaction.id)
                .limit(1)
            )
            assert row is not None
            return row

    async def queue(self, interaction: Interaction, text: str = TEXT) -> int:
        async with self.deps.sessionmaker() as session:
            body = ReplyCreate(text=text)
            reply, _ = await service.queue_reply(
                session, self.principal, interaction.id, body, None
            )
            await session.commit()  # its deferred task is dropped: the test sends it itself
            return reply.id

    async def reply(self, reply_id: int) -> OutboundReply:
        async with self.deps.sessionmaker() as session:
            row = await session.get(OutboundReply, reply_id)
            assert row is not None
            return row

    async def deliveries(self) -> dict[str, dict[str, int]]:
        response = await self.env.admin.get(f"/_sandbox/sellers/{self.env.sandbox_id}/deliveries")
        return dict(response.json())

    async def faults(self, **settings: Any) -> None:
        response = await self.env.admin.put("/_sandbox/faults", json=settings)
        assert response.status_code == 200, response.text

    async def make_due(self, reply_id: int) -> None:
        async with self.deps.sessionmaker() as session:
            await session.execute(
                update(OutboundReply)
                .where(OutboundReply.id == reply_id)
                .values(next_attempt_at=datetime.now(UTC))
            )
            await session.commit()

    async def events(self, interaction_id: int) -> list[str]:
        async with self.deps.sessionmaker() as session:
            kinds = await session.scalars(
                select(InteractionEvent.kind)
                .where(InteractionEvent.interaction_id == interaction_id)
                .order_by(InteractionEvent.id)
            )
            return list(kinds)


@pytest.fixture
async def outbox(
    connection: AsyncConnection, session: AsyncSession, redis: Redis, settings: Settings
) -> AsyncIterator[Outbox]:
    env = await sandbox.start(
        connection, session, redis, settings, seed=11, reviews=40, questions=20, chats=6,
        moderation_seconds=0,
    )  # fmt: skip
    for channel in ("review", "question", "chat"):
        assert (await env.sync(channel)).status == "succeeded"
    seller = await session.get(Seller, env.seller_id)
    assert seller is not None
    user = await factories.create_user(session, seller, "dispatcher@example.com")
    await session.commit()
    deps = sender.DispatchDeps(env.deps.sessionmaker, redis, env.deps.settings, env.deps.transport)
    yield Outbox(
        env,
        deps,
        Principal(
            user_id=user.id, seller_id=seller.id, role="owner", credential=Credential.SESSION
        ),
    )
    await env.admin.aclose()


@pytest.mark.parametrize("channel", ["review", "question", "chat"])
async def test_each_channel_is_delivered_once_and_recorded(outbox: Outbox, channel: str) -> None:
    item = await outbox.item(channel)
    reply_id = await outbox.queue(item)

    state = await sender.send(outbox.deps, reply_id)
    again = await sender.send(outbox.deps, reply_id)  # a second delivery of the task

    assert (state, again) == ("sent", "skipped")
    reply = await outbox.reply(reply_id)
    assert (reply.state, reply.attempts, reply.confirmed_by) == ("sent", 1, "sent")
    assert reply.quality == "reply_manual"  # no draft
    assert (await outbox.deliveries())[channel] == {item.external_id: 1}
    async with outbox.deps.sessionmaker() as session:
        row = await session.get(Interaction, item.id)
        assert row is not None
        assert row.status == "pending_reply"
        assert row.first_response_at is not None
        assert row.reply_pending_until is not None
    assert await outbox.events(item.id) == ["reply_queued", "reply_sent", "reply_manual"]


async def test_quality_compares_the_sent_text_with_the_last_draft(outbox: Outbox) -> None:
    items = [await outbox.item("question"), await outbox.item("review")]
    async with outbox.deps.sessionmaker() as session:
        for item in items:
            session.add(Draft(interaction_id=item.id, seller_id=item.seller_id, text=TEXT,
                              provider="offline", warnings=[], sources=[]))  # fmt: skip
        await session.commit()
    accepted = await outbox.queue(items[0], TEXT)
    edited = await outbox.queue(items[1], TEXT.replace("размер заказа", "номер заказа"))

    for reply_id in (accepted, edited):
        assert await sender.send(outbox.deps, reply_id) == "sent"

    assert (await outbox.reply(accepted)).quality == "draft_accepted"
    assert (await outbox.reply(edited)).quality == "draft_edited"


@pytest.mark.parametrize("channel", ["review", "chat"])
async def test_a_send_that_landed_before_the_worker_died_is_found_not_resent(
    outbox: Outbox, channel: str
) -> None:
    item = await outbox.item(channel)
    reply_id = await outbox.queue(item)
    await _land_then_die(outbox, reply_id, item)

    assert await sender.sweep(outbox.deps) == 1
    assert (await outbox.reply(reply_id)).state == "failed"
    assert await sender.send(outbox.deps, reply_id) == "sent"

    reply = await outbox.reply(reply_id)
    assert (reply.attempts, reply.confirmed_by) == (2, "found")
    assert (await outbox.deliveries())[channel] == {item.external_id: 1}


async def _land_then_die(outbox: Outbox, reply_id: int, item: Interaction) -> None:
    """An attempt claimed (committed) and delivered, never recorded; its lock expired."""
    async with outbox.deps.sessionmaker() as session:
        claimed = await repository.claim(session, reply_id, datetime.now(UTC))
        await session.commit()
    assert claimed is not None
    async with outbox.deps.sessionmaker() as session:
        interaction = await session.get(Interaction, item.id)
        assert interaction is not None
        await _deliver_directly(outbox, claimed, interaction)
    await outbox.make_due(reply_id)


async def _deliver_directly(outbox: Outbox, reply: OutboundReply, interaction: Interaction) -> None:
    from app.connectors.wildberries.client import WildberriesClient
    from app.core.egress import EgressPolicy
    from app.core.ratelimit import RateLimiter

    settings = outbox.deps.settings
    async with WildberriesClient(
        token=outbox.env.token, seller_id=reply.seller_id, limiter=RateLimiter(outbox.deps.redis),
        feedbacks_url=settings.wb_feedbacks_base_url, chat_url=settings.wb_buyer_chat_base_url,
        policy=EgressPolicy.from_settings(settings), transport=outbox.deps.transport,
    ) as client:  # fmt: skip
        await sender._deliver(client, reply, interaction)


async def test_a_live_attempt_is_left_alone_by_the_sweeper(outbox: Outbox) -> None:
    reply_id = await outbox.queue(await outbox.item("review"))
    async with outbox.deps.sessionmaker() as session:
        await repository.claim(session, reply_id, datetime.now(UTC))
        await session.commit()
    await outbox.make_due(reply_id)
    assert await locks.acquire(outbox.deps.redis, sender.lock_key(reply_id), "alive", 30)

    assert await sender.sweep(outbox.deps) == 0
    assert await sender.send(outbox.deps, reply_id) == "busy"
    assert (await outbox.reply(reply_id)).state == "sending"


async def test_a_5xx_is_retried_after_a_check_and_delivered_once(outbox: Outbox) -> None:
    item = await outbox.item("review")
    reply_id = await outbox.queue(item)
    await outbox.faults(error_rate=1.0)

    assert await sender.send(outbox.deps, reply_id) == "failed"
    failed = await outbox.reply(reply_id)
    assert failed.next_attempt_at >= failed.updated_at  # backoff from the failure
    assert failed.last_error is not None
    assert "may have landed" in failed.last_error

    await outbox.faults(error_rate=0.0)
    await outbox.make_due(reply_id)
    assert await sender.sweep(outbox.deps) == 1
    assert await sender.send(outbox.deps, reply_id) == "sent"

    reply = await outbox.reply(reply_id)
    assert (reply.state, reply.attempts, reply.confirmed_by) == ("sent", 2, "sent")
    assert (await outbox.deliveries())["review"] == {item.external_id: 1}
    assert await outbox.events(item.id) == [
        "reply_queued", "reply_failed", "reply_sent", "reply_manual",
    ]  # fmt: skip


async def test_it_gives_up_after_the_last_attempt_and_reopens_the_item(outbox: Outbox) -> None:
    outbox.deps.settings = outbox.deps.settings.model_copy(update={"dispatch_max_attempts": 2})
    item = await outbox.item("question")
    reply_id = await outbox.queue(item)
    await outbox.faults(error_rate=1.0)

    first = await sender.send(outbox.deps, reply_id)
    await outbox.make_due(reply_id)
    await sender.sweep(outbox.deps)
    second = await sender.send(outbox.deps, reply_id)

    assert (first, second) == ("failed", "dead")
    async with outbox.deps.sessionmaker() as session:
        row = await session.get(Interaction, item.id)
        assert row is not None
        assert (row.status, row.needs_response) == ("open", True)
    assert (await outbox.events(item.id))[-1] == "reply_dead"


async def test_an_answer_given_elsewhere_is_not_overwritten(outbox: Outbox) -> None:
    item = await outbox.item("review")
    reply_id = await outbox.queue(item)
    portal = await outbox.env.admin.post(
        "/api/v1/feedbacks/answer",
        json={"id": item.external_id, "text": "Ответ из личного кабинета продавца"},
        headers={"Authorization": outbox.env.token},
    )
    assert portal.status_code == 204

    assert await sender.send(outbox.deps, reply_id) == "dead"
    reply = await outbox.reply(reply_id)
    assert reply.last_error is not None
    assert "another answer" in reply.last_error


@pytest.mark.parametrize(("moderation", "after_sync"), [(0, "responded"), (3600, "pending_reply")])
async def test_the_sync_confirms_a_sent_answer_once_moderation_shows_it(
    outbox: Outbox, moderation: int, after_sync: str
) -> None:
    seller_url = f"/_sandbox/sellers/{outbox.env.sandbox_id}"
    patched = await outbox.env.admin.patch(seller_url, json={"moderation_seconds": moderation})
    assert patched.status_code == 200, patched.text
    item = await outbox.item("review")
    assert await sender.send(outbox.deps, await outbox.queue(item)) == "sent"

    assert (await outbox.env.sync("review")).status == "succeeded"

    async with outbox.deps.sessionmaker() as session:
        row = await session.get(Interaction, item.id)
        assert row is not None
        assert row.status == after_sync


async def test_a_question_answer_hidden_by_moderation_is_waited_for_not_resent(
    outbox: Outbox,
) -> None:
    # WB shows a question's first answer only once moderation publishes it.
    seller_url = f"/_sandbox/sellers/{outbox.env.sandbox_id}"
    assert (await outbox.env.admin.patch(seller_url, json={"moderation_seconds": 1.5})).is_success
    outbox.deps.settings = outbox.deps.settings.model_copy(
        update={"dispatch_question_moderation_seconds": 2.5}
    )
    item = await outbox.item("question")
    reply_id = await outbox.queue(item)
    await _land_then_die(outbox, reply_id, item)
    assert await sender.sweep(outbox.deps) == 1

    waiting = await sender.send(outbox.deps, reply_id)  # in moderation: the check sees nothing
    row = await outbox.reply(reply_id)
    assert (waiting, row.uncertain_since is not None) == ("failed", True)
    assert row.last_error is not None
    assert "moderation" in row.last_error
    assert row.next_attempt_at > datetime.now(UTC)
    await asyncio.sleep((row.next_attempt_at - datetime.now(UTC)).total_seconds() + 0.1)
    await sender.sweep(outbox.deps)
    found = await sender.send(outbox.deps, reply_id)

    assert found == "sent"
    assert (await outbox.reply(reply_id)).confirmed_by == "found"
    assert (await outbox.deliveries())["question"] == {item.external_id: 1}


async def test_a_marketplace_address_the_policy_refuses_is_never_called(outbox: Outbox) -> None:
    """WB_* pointing at an address that is not on the marketplace allow-list: the reply fails
    (and is retried later) without a request reaching the marketplace."""
    inside = "http://127.0.0.1:8100"  # not allow-listed here (the test's sandbox is http://sandbox)
    outbox.deps.settings = outbox.deps.settings.model_copy(
        update={"wb_feedbacks_base_url": inside, "wb_buyer_chat_base_url": inside}
    )
    item = await outbox.item("review")
    reply_id = await outbox.queue(item)
    await outbox.env.admin.delete(f"/_sandbox/sellers/{outbox.env.sandbox_id}/requests")

    assert await sender.send(outbox.deps, reply_id) == "failed"

    reply = await outbox.reply(reply_id)
    assert reply.last_error == f"refused by policy on POST {inside}/api/v1/feedbacks/answer"
    assert reply.uncertain_since is None  # nothing was sent, so nothing may have landed
    log = await outbox.env.admin.get(f"/_sandbox/sellers/{outbox.env.sandbox_id}/requests")
    assert log.json()["total"] == 0
    assert (await outbox.deliveries())["review"] == {}
