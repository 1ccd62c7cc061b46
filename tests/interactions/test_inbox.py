from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.interactions import repository, search
from app.interactions.models import InteractionEvent
from app.interactions.schemas import InteractionPage
from app.sellers.models import Seller
from tests import factories

NOW = datetime.now(UTC)


async def _ids(client: AsyncClient, headers: dict[str, str], query: str = "") -> list[int]:
    response = await client.get(f"/api/v1/interactions?limit=200{query}", headers=headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


@pytest.fixture
async def shop(session: AsyncSession, client: AsyncClient) -> tuple[Seller, dict[str, str]]:
    return await factories.operator(session, client, "inbox@example.com", "Shop")


async def test_each_filter_selects_exactly_its_items(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    me = (await session.scalars(select(User).where(User.seller_id == seller.id))).one()
    make = factories.create_interaction
    chat = await make(session, seller, channel="chat", priority="urgent")
    question = await make(session, seller, channel="question", intent="sizing_fit", nm_id=77)
    closed = await make(session, seller, status="closed", needs_response=False, source="demo")
    one_star = await make(session, seller, rating=1, intent="defect_quality")
    five_star = await make(session, seller, rating=5, needs_response=False, status="responded")
    overdue = await make(session, seller, sla_due_at=NOW - timedelta(hours=1))
    due_soon = await make(session, seller, sla_due_at=NOW + timedelta(minutes=30))
    on_track = await make(session, seller, sla_due_at=NOW + timedelta(days=1))
    mine = await make(session, seller, assignee_id=me.id)
    everything = {x.id for x in (chat, question, closed, one_star, five_star, overdue, due_soon,
                                 on_track, mine)}  # fmt: skip

    cases: list[tuple[str, set[int]]] = [
        ("&channel=chat", {chat.id}),
        ("&channel=chat&channel=question", {chat.id, question.id}),
        ("&status=closed", {closed.id}),
        ("&priority=urgent", {chat.id}),
        ("&source=demo", {closed.id}),
        ("&needs_response=false", {closed.id, five_star.id}),
        ("&nm_id=77", {question.id}),
        ("&intent=sizing_fit&intent=defect_quality", {question.id, one_star.id}),
        ("&rating=1", {one_star.id}),
        ("&sla=overdue", {overdue.id}),
        ("&sla=due_soon", {due_soon.id}),
        ("&sla=on_track", {on_track.id}),
        ("&assignee=me", {mine.id}),
        (f"&assignee={me.id}", {mine.id}),
        ("&assignee=none", everything - {mine.id}),
        ("&sla=none", everything - {overdue.id, due_soon.id, on_track.id}),
        ("", everything),
    ]
    for query, expected in cases:
        assert set(await _ids(client, headers, query)) == expected, query


async def test_russian_full_text_search_matches_inflections_and_ranks(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    strong = await factories.create_interaction(
        session, seller, text="Кроссовки маломерят. Кроссовки узкие, кроссовки жмут."
    )
    weak = await factories.create_interaction(
        session, seller, text="Бегаю в этих кроссовках для бега"
    )
    await factories.create_interaction(session, seller, text="Отличная куртка")
    by_name = await factories.create_interaction(
        session, seller, text="Спасибо", product_name="Кроссовки беговые"
    )

    ids = await _ids(client, headers, "&q=кроссовки")

    assert set(ids) == {strong.id, weak.id, by_name.id}
    assert ids[0] == strong.id  # ranked first
    assert await _ids(client, headers, "&q=кроссовки -бега") == [strong.id, by_name.id]


async def test_list_items_are_summaries_and_the_card_keeps_the_raw_fields(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    raw = {"answer": {"text": "Спасибо!"}, "photos": []}
    item = await factories.create_interaction(
        session, seller, extra=raw, sla_due_at=NOW + timedelta(minutes=30)
    )

    page = await client.get("/api/v1/interactions", headers=headers)
    listed = page.json()["items"]
    card = (await client.get(f"/api/v1/interactions/{item.id}", headers=headers)).json()

    # The page is written without its models (plain_json_response): exactly what they give.
    assert InteractionPage.model_validate_json(page.content).model_dump(mode="json") == page.json()
    assert [i["id"] for i in listed] == [item.id]
    assert "extra" not in listed[0]
    assert listed[0]["sla_state"] == card["interaction"]["sla_state"] == "due_soon"
    assert card["interaction"]["extra"] == raw


async def test_priority_sort_is_urgent_first_then_nearest_due_then_none(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    make = factories.create_interaction
    low = await make(session, seller, priority="low", sla_due_at=NOW)
    normal_late = await make(session, seller, sla_due_at=NOW + timedelta(hours=5))
    normal_none = await make(session, seller, sla_due_at=None)
    normal_soon = await make(session, seller, sla_due_at=NOW + timedelta(hours=1))
    urgent = await make(session, seller, priority="urgent", sla_due_at=NOW + timedelta(days=3))

    expected = [urgent.id, normal_soon.id, normal_late.id, normal_none.id, low.id]
    assert await _ids(client, headers) == expected
    assert await _ids(client, headers, "&sort=newest") == sorted(expected, reverse=True)
    assert await _ids(client, headers, "&sort=oldest") == sorted(expected)


@pytest.mark.parametrize("sort", ["priority", "newest", "oldest", "relevance"])
async def test_pages_are_stable_while_new_items_arrive(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]], sort: str
) -> None:
    seller, headers = shop
    priorities = ["urgent", "high", "normal", "low"]
    original = set()
    for n in range(11):
        row = await factories.create_interaction(
            session, seller, priority=priorities[n % 4], text="доставка " * (1 + n % 3),
            sla_due_at=None if n % 5 == 0 else NOW + timedelta(hours=n % 4),
        )  # fmt: skip
        original.add(row.id)
    seen: list[int] = []
    cursor = None
    while True:
        query = f"&sort={sort}&limit=3&q=доставка" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(f"/api/v1/interactions?{query[1:]}", headers=headers)).json()
        seen += [item["id"] for item in page["items"]]
        # Items arriving between pages (newest, most urgent, best match) must not shift pages.
        await factories.create_interaction(
            session, seller, priority="urgent", text="доставка доставка доставка доставка",
            occurred_at=NOW + timedelta(days=len(seen)), sla_due_at=NOW - timedelta(days=1),
        )  # fmt: skip
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert len(seen) == len(set(seen))
    assert original <= set(seen)


async def test_relevance_ranks_the_newest_window_of_matches_and_pages_stay_on_it(
    session: AsyncSession,
    client: AsyncClient,
    shop: tuple[Seller, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(repository, "SEARCH_WINDOW", search.Window(size=4))
    seller, headers = shop
    make = factories.create_interaction
    old_best = await make(session, seller, text="брак " * 5, occurred_at=NOW - timedelta(days=9))
    recent = [
        await make(session, seller, text="брак " * n, occurred_at=NOW - timedelta(days=5 - n))
        for n in range(1, 5)
    ]
    await make(session, seller, text="всё отлично", occurred_at=NOW)

    first = (await client.get("/api/v1/interactions?q=брак&limit=2", headers=headers)).json()
    await make(session, seller, text="брак " * 9, occurred_at=NOW)  # arrives between pages
    second = await client.get(
        f"/api/v1/interactions?q=брак&limit=2&cursor={first['next_cursor']}", headers=headers
    )

    ranked = [i["id"] for i in first["items"]] + [i["id"] for i in second.json()["items"]]
    assert ranked == [r.id for r in reversed(recent)]  # best match first, within the window
    assert old_best.id not in ranked
    assert second.json()["next_cursor"] is None


async def test_bad_cursors_and_sorts_are_clear_errors(
    client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    _, headers = shop

    garbage = await client.get("/api/v1/interactions?cursor=@@@", headers=headers)
    relevance = await client.get("/api/v1/interactions?sort=relevance", headers=headers)
    bad_rating = await client.get("/api/v1/interactions?rating=9", headers=headers)
    bad_intent = await client.get("/api/v1/interactions?intent=love", headers=headers)

    assert garbage.status_code == 422
    assert garbage.json()["error"]["code"] == "invalid_cursor"
    for response in (relevance, bad_rating, bad_intent):
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"
    assert bad_intent.json()["error"]["details"][0]["loc"] == ["query", "intent", 0]


async def test_counts_per_channel_and_status_follow_the_other_filters(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    other, _ = await factories.operator(session, client, "other@example.com", "Other")
    make = factories.create_interaction
    await make(session, seller, channel="chat")
    await make(session, seller, channel="review", status="closed", needs_response=False)
    await make(session, seller, channel="review")
    await make(session, other, channel="review")

    counts = (await client.get("/api/v1/interactions/counts?channel=review",
                               headers=headers)).json()  # fmt: skip

    assert counts["by_channel"] == {"chat": 1, "review": 2}
    assert counts["by_status"] == {"open": 1, "closed": 1}
    assert counts["total"] == 3


async def test_triage_changes_fields_and_records_events(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    me = (await session.scalars(select(User).where(User.seller_id == seller.id))).one()
    row = await factories.create_interaction(session, seller)

    response = await client.patch(
        f"/api/v1/interactions/{row.id}",
        json={"status": "closed", "priority": "urgent", "priority_reason": "VIP buyer",
              "assignee_id": me.id, "is_read": True},
        headers=headers,
    )  # fmt: skip

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["priority"], body["assignee_id"], body["is_read"]) == (
        "closed", "urgent", me.id, True,
    )  # fmt: skip
    assert body["needs_response"] is False
    events = (
        await session.scalars(
            select(InteractionEvent).where(InteractionEvent.interaction_id == row.id)
        )
    ).all()
    assert {e.kind for e in events} == {
        "status_changed", "priority_overridden", "assigned", "marked_read"
    }  # fmt: skip
    assert all(e.actor_user_id == me.id for e in events)
    override = next(e for e in events if e.kind == "priority_overridden")
    assert override.payload == {"from": "normal", "to": "urgent", "reason": "VIP buyer"}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"priority": "urgent"},
        {"status": None},
        {"status": "done"},
        {"assignee_id": 999_999},
    ],
)
async def test_invalid_triage_is_a_422(
    session: AsyncSession,
    client: AsyncClient,
    shop: tuple[Seller, dict[str, str]],
    body: dict[str, Any],
) -> None:
    seller, headers = shop
    row = await factories.create_interaction(session, seller)

    response = await client.patch(f"/api/v1/interactions/{row.id}", json=body, headers=headers)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_bulk_triage_touches_only_the_callers_items(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    other, _ = await factories.operator(session, client, "bulk-other@example.com", "Other")
    mine = [await factories.create_interaction(session, seller) for _ in range(3)]
    theirs = await factories.create_interaction(session, other)

    response = await client.post(
        "/api/v1/interactions/bulk",
        json={"ids": [r.id for r in mine] + [theirs.id, 10**12], "changes": {"is_read": True}},
        headers=headers,
    )

    assert response.json() == {
        "updated": sorted(r.id for r in mine), "not_found": sorted([theirs.id, 10**12])
    }  # fmt: skip
    await session.refresh(theirs)
    assert theirs.is_read is False


async def test_another_sellers_interaction_is_404_everywhere_and_never_listed(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    _, headers = shop
    other, other_headers = await factories.operator(session, client, "x@example.com", "X")
    theirs = await factories.create_interaction(session, other, text="секрет другого продавца")

    card = await client.get(f"/api/v1/interactions/{theirs.id}", headers=headers)
    patch = await client.patch(
        f"/api/v1/interactions/{theirs.id}", json={"is_read": True}, headers=headers
    )

    for response in (card, patch):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert await _ids(client, headers) == []
    assert await _ids(client, headers, "&q=секрет") == []
    counts = (await client.get("/api/v1/interactions/counts", headers=headers)).json()
    assert counts["total"] == 0
    assert await _ids(client, other_headers) == [theirs.id]
