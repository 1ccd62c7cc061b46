from datetime import UTC, datetime, timedelta

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.sellers.models import Seller
from app.sync import repository, service
from app.sync.models import SyncRun
from app.sync.normalize import SellerContext
from tests import factories
from tests.marketplace import Marketplace
from tests.sync import payloads


async def _connect(
    client: AsyncClient, headers: dict[str, str], marketplace: Marketplace, name: str = "shop"
) -> None:
    token = await marketplace.token(name)
    response = await client.post(
        "/api/v1/marketplace-accounts",
        json={"marketplace": "wildberries", "token": token},
        headers=headers,
    )
    assert response.status_code == 201, response.text


async def test_sync_now_queues_a_run_per_channel_and_reports_running_ones(
    session: AsyncSession, client: AsyncClient, marketplace: Marketplace
) -> None:
    _, headers = await factories.operator(session, client, "sync@example.com")
    await _connect(client, headers, marketplace)

    first = await client.post("/api/v1/sync", headers=headers)
    second = await client.post("/api/v1/sync", json={"channel": "chat"}, headers=headers)

    assert first.status_code == 202
    runs = first.json()["runs"]
    assert sorted(r["channel"] for r in runs) == ["chat", "question", "review"]
    assert all(r["status"] == "queued" and r["trigger"] == "manual" for r in runs)
    assert second.status_code == 202
    assert second.json()["runs"] == []
    chat_run = next(r["id"] for r in runs if r["channel"] == "chat")
    assert second.json()["already_running"] == {"chat": chat_run}


async def test_sync_now_without_an_account_is_a_409(
    session: AsyncSession, client: AsyncClient
) -> None:
    _, headers = await factories.operator(session, client, "noacct@example.com")

    response = await client.post("/api/v1/sync", json={"full_resync": True}, headers=headers)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_marketplace_account"


async def test_bad_channel_is_a_422(session: AsyncSession, client: AsyncClient) -> None:
    _, headers = await factories.operator(session, client, "badch@example.com")

    response = await client.post("/api/v1/sync", json={"channel": "email"}, headers=headers)

    assert response.status_code == 422


async def test_runs_list_is_paginated_and_seller_scoped(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller, headers = await factories.operator(session, client, "runs@example.com", "A")
    other = await factories.create_seller(session, "B")
    for _ in range(3):
        session.add(SyncRun(seller_id=seller.id, marketplace="wildberries", channel="review",
                            trigger="beat", status="succeeded"))  # fmt: skip
    session.add(SyncRun(seller_id=other.id, marketplace="wildberries", channel="review",
                        trigger="beat", status="failed"))  # fmt: skip
    await session.flush()

    page1 = await client.get("/api/v1/sync/runs?limit=2", headers=headers)
    page2 = await client.get(
        f"/api/v1/sync/runs?limit=2&cursor={page1.json()['next_cursor']}", headers=headers
    )

    ids = [r["id"] for r in page1.json()["items"] + page2.json()["items"]]
    assert len(ids) == 3
    assert ids == sorted(ids, reverse=True)
    assert page2.json()["next_cursor"] is None
    bad = await client.get("/api/v1/sync/runs?cursor=not-a-cursor", headers=headers)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_cursor"


async def test_sync_status_shows_cursors_and_last_runs(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller, headers = await factories.operator(session, client, "status@example.com")
    await repository.merge_cursor_state(session, seller.id, "chat", {"next": 123})
    session.add(SyncRun(seller_id=seller.id, marketplace="wildberries", channel="chat",
                        trigger="beat", status="succeeded", fetched=4))  # fmt: skip
    await session.flush()

    body = (await client.get("/api/v1/sync/status", headers=headers)).json()

    assert body["channels"]["chat"]["cursor"] == {"next": 123}
    assert body["channels"]["chat"]["last_run"]["fetched"] == 4
    assert body["channels"]["review"]["last_run"] is None


async def test_beat_fans_out_only_due_sellers_with_an_account(
    session: AsyncSession, client: AsyncClient, marketplace: Marketplace
) -> None:
    now = datetime.now(UTC)
    due, due_headers = await factories.operator(session, client, "due@example.com", "Due")
    later, later_headers = await factories.operator(session, client, "later@example.com", "Later")
    await factories.operator(session, client, "noacct2@example.com", "No account")
    await _connect(client, due_headers, marketplace, "due")
    await _connect(client, later_headers, marketplace, "later")
    later.next_sync_at = now + timedelta(minutes=3)
    await session.flush()

    queued = await service.fan_out_due(session, now=now)
    again = await service.fan_out_due(session, now=now)

    assert (queued, again) == (1, 0)
    runs = (await session.scalars(select(SyncRun).where(SyncRun.trigger == "beat"))).all()
    assert {(r.seller_id, r.channel) for r in runs} == {(due.id, c) for c in service.CHANNELS}
    refreshed = await session.get(Seller, due.id, populate_existing=True)
    assert refreshed is not None
    assert refreshed.next_sync_at == now + timedelta(minutes=5)


async def test_inbox_lists_newest_first_with_a_stable_cursor_and_never_leaks(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller, headers = await factories.operator(session, client, "inbox@example.com", "A")
    other, _ = await factories.operator(session, client, "inbox2@example.com", "B")
    for owner in (seller, other):
        ctx = SellerContext(owner.id, {})
        await repository.upsert_interactions(
            session, [payloads.review_row(payloads.feedback(i), ctx) for i in range(5)]
        )

    page1 = (await client.get("/api/v1/interactions?limit=3&sort=newest", headers=headers)).json()
    # A newer item arriving between pages must not shift the second page.
    await repository.upsert_interactions(
        session,
        [payloads.review_row(payloads.feedback(99, createdDate="2026-12-01T00:00:00+03:00"),
                              SellerContext(seller.id, {}))],
    )  # fmt: skip
    page2 = (
        await client.get(f"/api/v1/interactions?limit=3&sort=newest&cursor={page1['next_cursor']}",
                         headers=headers)
    ).json()  # fmt: skip

    ids = [i["id"] for i in page1["items"] + page2["items"]]
    assert len(ids) == len(set(ids)) == 5
    times = [i["occurred_at"] for i in page1["items"] + page2["items"]]
    assert times == sorted(times, reverse=True)
    assert page2["next_cursor"] is None
    assert all(i["channel"] == "review" for i in page1["items"])
