import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.links import service
from app.sellers.models import Seller
from app.worker.enqueue import AFTER_COMMIT, AFTER_COMMIT_ONCE
from tests import factories
from tests.links.helpers import backlog_of, make

NM = 888


@pytest.fixture
async def shop(session: AsyncSession, client: AsyncClient) -> tuple[Seller, dict[str, str]]:
    return await factories.operator(session, client, "links@example.com", "Shop")


@pytest.fixture
async def stranger(session: AsyncSession, client: AsyncClient) -> tuple[Seller, dict[str, str]]:
    return await factories.operator(session, client, "stranger@example.com", "Other")


async def test_links_endpoint_lists_medium_and_high_unless_asked(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    s = seller.id
    chat = await make(session, s, "chat", nm_id=NM, customer_id="c1", intent="sizing_fit")
    same = await make(session, s, "review", hours=-500, customer_id="c1", text="x" * 300)
    probable = await make(session, s, "question", hours=3, nm_id=NM, intent="sizing_fit")
    low = await make(session, s, "review", hours=40, nm_id=NM)
    await service.recompute_for(session, s, [chat.id])

    response = await client.get(f"/api/v1/interactions/{chat.id}/links", headers=headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    assert [(i["target_id"], i["action_mode"]) for i in body["items"]] == [
        (same.id, "auto_allowed"),
        (probable.id, "assist_only"),
    ]
    first = body["items"][0]
    assert first["target_text_preview"] == "x" * 160
    assert first["target_channel"] == "review"
    assert {k: first[k] for k in ("level", "deterministic", "band", "match_reason")} == {
        "level": "B", "deterministic": True, "band": "high", "match_reason": "same_customer",
    }  # fmt: skip
    assert body["items"][1]["signals"] == {
        "same_product_7d": 0.45, "within_24h": 0.2, "same_intent": 0.2,
    }  # fmt: skip

    everything = await client.get(
        f"/api/v1/interactions/{chat.id}/links?min_band=low", headers=headers
    )
    assert low.id in {i["target_id"] for i in everything.json()["items"]}
    high = await client.get(f"/api/v1/interactions/{chat.id}/links?min_band=high", headers=headers)
    assert [i["target_id"] for i in high.json()["items"]] == [same.id, probable.id]
    bad = await client.get(f"/api/v1/interactions/{chat.id}/links?min_band=any", headers=headers)
    assert bad.status_code == 422
    card = await client.get(f"/api/v1/interactions/{chat.id}", headers=headers)
    assert card.json()["links"] == body["items"]  # the card shows the same, the same way


async def test_timeline_endpoint(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    x = await make(session, seller.id, "review", nm_id=NM, rating=1, text="Брак")
    other = await make(session, seller.id, "question", hours=-24, nm_id=NM)

    response = await client.get(f"/api/v1/interactions/{x.id}/timeline", headers=headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["interaction_id"], body["scope"], body["truncated"]) == (x.id, "product", False)
    assert [i["interaction"]["id"] for i in body["items"]] == [other.id, x.id]
    me = body["items"][1]
    assert me == {
        "interaction": {
            "id": x.id, "channel": "review", "occurred_at": me["interaction"]["occurred_at"],
            "status": "open", "rating": 1, "text_preview": "Брак", "customer_name": None,
        },
        "match_reason": "self", "confidence": 1.0, "action_mode": "auto_allowed", "level": None,
        "deterministic": True,
    }  # fmt: skip
    assert body["items"][0]["match_reason"] == "same_product"
    assert body["items"][0]["level"] == "A"


async def test_another_sellers_interaction_is_404_on_links_and_timeline(
    session: AsyncSession,
    client: AsyncClient,
    shop: tuple[Seller, dict[str, str]],
    stranger: tuple[Seller, dict[str, str]],
) -> None:
    seller, _ = shop
    _, their_headers = stranger
    mine = await make(session, seller.id, "chat", nm_id=NM, customer_id="c1")
    await make(session, seller.id, "review", hours=1, nm_id=NM, customer_id="c1")
    await service.recompute_for(session, seller.id, [mine.id])

    for path in (f"/interactions/{mine.id}/links", f"/interactions/{mine.id}/timeline"):
        response = await client.get(f"/api/v1{path}", headers=their_headers)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
        assert "request_id" in response.json()

    response = await client.post(
        "/api/v1/links/recompute", json={"interaction_ids": [mine.id]}, headers=their_headers
    )
    assert response.status_code == 404
    assert response.json()["error"]["details"] == {"ids": [mine.id]}
    assert not session.info.get(AFTER_COMMIT)
    assert not session.info.get(AFTER_COMMIT_ONCE)
    assert await backlog_of(session, mine.seller_id) == []


async def test_recompute_fills_the_backlog_and_asks_for_one_task_per_seller(
    session: AsyncSession, client: AsyncClient, shop: tuple[Seller, dict[str, str]]
) -> None:
    seller, headers = shop
    a = await make(session, seller.id, "chat")
    b = await make(session, seller.id, "review")

    response = await client.post(
        "/api/v1/links/recompute", json={"interaction_ids": [b.id, a.id, b.id]}, headers=headers
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"queued": True}
    assert await backlog_of(session, seller.id) == sorted([a.id, b.id])
    whole = await client.post("/api/v1/links/recompute", headers=headers)
    assert whole.status_code == 202
    assert await backlog_of(session, seller.id) == [*sorted([a.id, b.id]), None]

    # Published after commit, each only if no recompute of the seller is pending.
    request = (service.marker_key(seller.id), service.MARKER_TTL_SECONDS, "links.recompute")
    assert session.info[AFTER_COMMIT_ONCE] == [(*request, (seller.id,))] * 2
    assert not session.info.get(AFTER_COMMIT)
    too_many = await client.post(
        "/api/v1/links/recompute", json={"interaction_ids": list(range(1, 5002))}, headers=headers
    )
    assert too_many.status_code == 413  # an array over its maxItems: too much at once
    empty = await client.post(
        "/api/v1/links/recompute", json={"interaction_ids": []}, headers=headers
    )
    assert empty.status_code == 422


async def test_endpoints_need_a_token(client: AsyncClient) -> None:
    for method, path in (
        ("GET", "/api/v1/interactions/1/links"),
        ("GET", "/api/v1/interactions/1/timeline"),
        ("POST", "/api/v1/links/recompute"),
    ):
        assert (await client.request(method, path)).status_code == 401
