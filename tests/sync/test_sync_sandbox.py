"""The sync end to end against the marketplace sandbox (docs/wb-api.md as the contract)."""

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.config import Settings
from app.sync import repository
from app.sync.models import SyncError
from tests.sync import sandbox
from tests.sync.sandbox import SandboxSync

# Kinds of corruption the sandbox injects that break our contract; "emoji" text and a broken
# `addTime` string (we read `addTimestamp`) are valid data and must be stored.
REJECTED_ITEM_KINDS = {
    "missing_id",
    "missing_created_date",
    "wrong_type",
    "broken_date",
    "huge_text",
}
REJECTED_EVENT_KINDS = {"missing_event_id", "missing_add_timestamp", "wrong_type", "huge_text"}


@pytest.fixture
async def shop(
    connection: AsyncConnection, session: AsyncSession, redis: Redis, settings: Settings
) -> AsyncIterator[SandboxSync]:
    env = await sandbox.start(
        connection, session, redis, settings, seed=7, reviews=700, questions=300, chats=40,
        moderation_seconds=0.5,
    )  # fmt: skip
    yield env
    await env.admin.aclose()


async def test_first_sync_fills_the_inbox_with_every_channel(shop: SandboxSync) -> None:
    runs = [await shop.sync(channel) for channel in ("review", "question", "chat")]

    counts = (await shop.sandbox_state())["counts"]
    assert [r.status for r in runs] == ["succeeded"] * 3
    assert await shop.count("review") == counts["review"]["total"] == 700
    assert await shop.count("review", status="open") == counts["review"]["unanswered"]
    assert await shop.count("question") == counts["question"]["total"]
    assert await shop.count("chat") == counts["chat"]["total"] == 40
    assert await shop.messages() == counts["chat"]["events"]
    assert runs[0].fetched == runs[0].created == 700
    assert all(r.errors == 0 and r.rate_limited == 0 for r in runs)


async def test_incremental_sync_with_nothing_new_costs_at_most_3_requests(
    shop: SandboxSync,
) -> None:
    for channel in ("review", "question", "chat"):
        await shop.sync(channel)

    again = {channel: await shop.sync(channel) for channel in ("review", "question", "chat")}

    for channel, run in again.items():
        assert run.status == "succeeded", channel
        assert run.requests <= 3, (channel, run.requests)
        assert run.created == 0, channel


async def test_new_items_arrive_with_the_next_incremental_sync(shop: SandboxSync) -> None:
    for channel in ("review", "question", "chat"):
        await shop.sync(channel)
    for channel in ("review", "question", "chat"):
        added = await shop.admin.post(
            f"/_sandbox/sellers/{shop.sandbox_id}/items", json={"channel": channel, "count": 5}
        )
        assert added.status_code in (200, 201), added.text

    runs = {channel: await shop.sync(channel) for channel in ("review", "question", "chat")}

    assert {channel: run.created for channel, run in runs.items()} == {
        "review": 5, "question": 5, "chat": 5
    }  # fmt: skip
    assert await shop.count("review") == 705


async def test_an_answer_given_elsewhere_is_picked_up(shop: SandboxSync) -> None:
    await shop.sync("review")
    listed = await shop.admin.get(
        "/api/v1/feedbacks",
        params={"isAnswered": "false", "take": 1, "skip": 0, "order": "dateAsc"},
        headers={"Authorization": shop.token},
    )
    oldest_open = listed.json()["data"]["feedbacks"][0]["id"]
    answered = await shop.admin.post(
        "/api/v1/feedbacks/answer",
        json={"id": oldest_open, "text": "Спасибо за отзыв, разберёмся!"},
        headers={"Authorization": shop.token},
    )
    assert answered.status_code == 204
    await shop.admin.post("/_sandbox/clock", json={"advance_seconds": 5})
    open_before = await shop.count("review", status="open")

    run = await shop.sync("review")

    assert run.status == "succeeded"
    assert await shop.count("review", status="open") == open_before - 1
    assert await shop.count("review", external_id=oldest_open, status="responded") == 1


async def test_full_resync_changes_nothing_when_nothing_changed(shop: SandboxSync) -> None:
    first = await shop.sync("review")

    full = await shop.sync("review", full=True)

    assert first.created == 700
    assert (full.created, full.updated, full.fetched) == (0, 0, 700)


async def test_cursor_sits_at_the_newest_item_of_each_list(shop: SandboxSync) -> None:
    await shop.sync("question")

    async with shop.deps.sessionmaker() as session:
        state = await repository.get_cursor_state(session, shop.seller_id, "question")
    newest = {}
    for answered in ("false", "true"):
        page = await shop.admin.get(
            "/api/v1/questions",
            params={"isAnswered": answered, "take": 1, "skip": 0, "order": "dateDesc"},
            headers={"Authorization": shop.token},
        )
        created = page.json()["data"]["questions"][0]["createdDate"]
        newest[answered] = int(datetime.fromisoformat(created).timestamp())
    assert state == {"unanswered": newest["false"], "answered": newest["true"]}


@pytest.mark.slow
async def test_sync_survives_5xx_429_bursts_and_malformed_items_within_limits(
    connection: AsyncConnection, session: AsyncSession, redis: Redis, settings: Settings
) -> None:
    env = await sandbox.start(
        connection, session, redis, settings, seed=11, reviews=3000, questions=1200, chats=60
    )
    faults = {
        "error_rate": 0.2,
        "latency_ms": [0, 20],
        "burst_429": {"every": 7, "length": 2},
        "malformed_rate": 0.05,
        "seed": 3,
    }
    assert (
        await env.admin.put(f"/_sandbox/sellers/{env.sandbox_id}/faults", json=faults)
    ).is_success

    runs = {channel: await env.sync(channel) for channel in ("review", "question", "chat")}

    assert {c: r.status for c, r in runs.items()} == dict.fromkeys(runs, "succeeded")
    assert sum(r.rate_limited for r in runs.values()) > 0
    malformed = (await env.admin.get(f"/_sandbox/sellers/{env.sandbox_id}/malformed")).json()
    counts = (await env.sandbox_state())["counts"]
    for channel in ("review", "question"):
        rejected = [m for m in malformed[channel] if m["kind"] in REJECTED_ITEM_KINDS]
        assert len(rejected) > 0
        assert await env.count(channel) == counts[channel]["total"] - len(rejected), channel
        assert await _distinct_errors(env, channel) == len(rejected), channel
    rejected_events = [m for m in malformed["chat"] if m["kind"] in REJECTED_EVENT_KINDS]
    assert await env.messages() == counts["chat"]["events"] - len(rejected_events)
    assert await _distinct_errors(env, "chat") == len(rejected_events)

    log = (await env.admin.get(f"/_sandbox/sellers/{env.sandbox_id}/requests")).json()
    feedbacks, chat = log["by_group"]["feedbacks"], log["by_group"]["chat"]
    assert feedbacks["max_in_any_1s"] <= 6 + 3  # burst + rate × 1 s
    assert chat["max_in_any_10s"] <= 10 + 10
    await env.admin.aclose()


async def _distinct_errors(env: SandboxSync, channel: str) -> int:
    async with env.deps.sessionmaker() as session:
        stmt = select(func.count(func.distinct(SyncError.raw))).where(
            SyncError.seller_id == env.seller_id, SyncError.channel == channel
        )
        return int((await session.execute(stmt)).scalar_one())


async def test_a_marketplace_address_the_policy_refuses_is_never_called(
    shop: SandboxSync,
) -> None:
    inside = "http://127.0.0.1:8100"  # not allow-listed here (the test's sandbox is http://sandbox)
    shop.deps.marketplace_url = inside

    runs = [await shop.sync(channel) for channel in ("review", "chat")]

    assert [(r.status, r.fetched) for r in runs] == [("failed", 0)] * 2
    assert runs[0].error == f"refused by policy on GET {inside}/api/v1/feedbacks"
    assert runs[1].error == f"refused by policy on GET {inside}/api/v1/seller/chats"
    log = (await shop.admin.get(f"/_sandbox/sellers/{shop.sandbox_id}/requests")).json()
    assert log["total"] == 0
