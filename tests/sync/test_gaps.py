"""More items in one second than WB's caps let anyone page through (questions: take + skip ≤
10 000): the sync reads both ends of that second, records what it could not reach as a gap,
goes on (the rest of the list, the answered list), shows the gap, and closes it once a later
sync finds nothing missing."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.connectors.base import BadRequest
from app.connectors.wildberries.client import WildberriesClient
from app.core.config import Settings
from app.core.egress import EgressPolicy
from app.core.ratelimit import RateLimiter
from app.sandbox.seller import Seller as SandboxSeller
from app.sellers.models import Seller, SellerSettings
from app.sync.models import SyncGap
from tests import factories
from tests.sync import sandbox
from tests.sync.sandbox import SandboxSync, published_to_test_redis  # noqa: F401

pytestmark = pytest.mark.usefixtures("published_to_test_redis")

CAP = 10_000  # questions: take + skip
DENSE = 2 * CAP + 100  # one second holds more than both ends of it can reach


@pytest.fixture
async def shop(
    connection: AsyncConnection, session: AsyncSession, redis: Redis, settings: Settings
) -> AsyncIterator[SandboxSync]:
    """A small question history, with the limits (ours and the sandbox's) out of the way: the
    test reads ~60,000 items and is about pages, not pacing."""
    env = await sandbox.start(
        connection, session, redis, settings, seed=5, reviews=0, questions=30, chats=0,
        moderation_seconds=0,
    )  # fmt: skip
    prefs = await session.get(SellerSettings, env.seller_id)
    assert prefs is not None
    prefs.rate_limits = {"feedbacks": {"rate": 1000, "burst": 1000}}
    await session.commit()
    response = await env.admin.put(
        f"/_sandbox/sellers/{env.sandbox_id}/rate-limits", json={"enabled": False}
    )
    assert response.status_code == 200
    yield env
    await env.admin.aclose()


def _sandbox_seller(env: SandboxSync) -> SandboxSeller:
    """The sandbox's own record of the seller (what the seller portal would change)."""
    transport: Any = env.deps.transport
    seller: SandboxSeller = transport.app.state.sandbox.sellers[env.sandbox_id]
    return seller


async def _add(env: SandboxSync, count: int, after_seconds: float = 0) -> None:
    if after_seconds:
        await env.admin.post("/_sandbox/clock", json={"advance_seconds": after_seconds})
    response = await env.admin.post(
        f"/_sandbox/sellers/{env.sandbox_id}/items", json={"channel": "question", "count": count}
    )
    assert response.status_code == 200, response.text


async def _gaps(env: SandboxSync) -> list[SyncGap]:
    async with env.deps.sessionmaker() as session:
        rows = await session.scalars(
            select(SyncGap).where(SyncGap.seller_id == env.seller_id).order_by(SyncGap.id)
        )
        return list(rows)


@pytest.mark.slow
async def test_a_second_beyond_both_ends_is_a_gap_and_the_rest_is_read(
    shop: SandboxSync, session: AsyncSession, client: AsyncClient
) -> None:
    await _add(shop, DENSE)  # all created in the same second
    await _add(shop, 3, after_seconds=5)  # and a few after it
    counts = (await shop.sandbox_state())["counts"]["question"]

    run = await shop.sync("question")

    assert (run.status, run.gaps, run.error) == ("succeeded", 1, None)
    [gap] = await _gaps(shop)
    assert (gap.list_name, gap.missing, gap.total) == ("unanswered", 100, DENSE)
    assert gap.window_from == gap.window_to
    assert (gap.run_id, gap.resolved_at) == (run.id, None)
    assert await shop.count("question") == counts["total"] - 100
    assert await shop.count("question", status="responded") == counts["answered"]

    seller = await session.get(Seller, shop.seller_id)
    assert seller is not None
    await factories.create_user(session, seller, "gaps@example.com")
    status = await client.get(
        "/api/v1/sync/status", headers=await factories.login(client, "gaps@example.com")
    )
    [shown] = status.json()["gaps"]
    assert (shown["list_name"], shown["missing"], shown["run_id"]) == ("unanswered", 100, run.id)
    assert status.json()["sync_status"] == "ok"

    # The seller answers 150 of them in the seller portal: both ends now meet.
    feed = _sandbox_seller(shop).questions
    now = (await shop.admin.get("/_sandbox/clock")).json()["now"]
    dense = [i for i in range(len(feed)) if int(feed.times[i]) == int(gap.window_from.timestamp())]
    for index in dense[CAP : CAP + 150]:
        assert feed.answer(index, "Спасибо за вопрос!", now, 0)

    again = await shop.sync("question")

    [closed] = await _gaps(shop)
    assert (again.status, again.gaps) == ("succeeded", 0)
    assert (closed.missing, closed.last_run_id) == (0, again.id)
    assert closed.resolved_at is not None
    assert await shop.count("question") == counts["total"]
    assert await shop.count("question", status="responded") == counts["answered"] + 150


async def test_an_open_gap_is_read_again_by_a_later_sync_and_closed(shop: SandboxSync) -> None:
    first = await shop.sync("question")
    feed = _sandbox_seller(shop).questions
    old = next(i for i in range(len(feed)) if not feed.answered[i])
    second = int(feed.times[old])
    window = datetime.fromtimestamp(second, UTC)
    gap = SyncGap(
        seller_id=shop.seller_id, marketplace="wildberries", channel="question",
        list_name="unanswered", window_from=window, window_to=window, total=12_000, missing=3,
        run_id=first.id, last_run_id=first.id,
    )  # fmt: skip
    async with shop.deps.sessionmaker() as session:
        session.add(gap)
        await session.commit()
    await _add(shop, 2, after_seconds=60)

    later = await shop.sync("question")

    [gap] = await _gaps(shop)  # the same row, read again
    assert (later.status, later.created) == ("succeeded", 2)
    assert (gap.missing, gap.last_run_id) == (0, later.id)
    assert gap.resolved_at is not None


async def test_a_marketplace_reading_date_to_as_exclusive_fails_loudly_not_silently(
    redis: Redis, settings: Settings
) -> None:
    """We read a dense second as dateFrom = dateTo (inclusive, as the sandbox reads it; WB does
    not say). Were WB's dateTo exclusive, that read would come back empty: the sync must fail,
    not go on as if the second held nothing."""
    second = 1_790_000_000
    created = datetime.fromtimestamp(second, UTC).isoformat()

    def marketplace(request: httpx.Request) -> httpx.Response:
        query = request.url.params
        exclusive_empty = "dateTo" in query and query["dateFrom"] == query["dateTo"]
        take = int(query["take"])
        items = [] if exclusive_empty else [
            {"id": f"q{int(query['skip']) + i}", "createdDate": created} for i in range(take)
        ]  # fmt: skip
        body = {"data": {"questions": items}, "error": False, "errorText": ""}
        return httpx.Response(200, json=body)

    client = WildberriesClient(
        token="t", seller_id=1, limiter=RateLimiter(redis), feedbacks_url=sandbox.SANDBOX_URL,
        chat_url=sandbox.SANDBOX_URL, policy=EgressPolicy.from_settings(settings),
        transport=httpx.MockTransport(marketplace),
    )  # fmt: skip

    async with client:
        with pytest.raises(BadRequest, match="missed items"):
            async for _ in client.iter_items("question", is_answered=False):
                pass
