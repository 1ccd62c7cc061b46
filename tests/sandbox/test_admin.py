"""The /_sandbox control API: sellers, new items, growth, request log, clock, reset."""

from datetime import datetime

import pytest
from httpx import AsyncClient

from app.sandbox.ratelimit import max_in_window
from tests.sandbox.conftest import FROZEN_AT, MakeSeller, advance, all_items


async def test_creating_a_seller_is_idempotent_by_name(wb: AsyncClient) -> None:
    body = {"name": "same", "seed": 1, "reviews": 20, "questions": 10, "chats": 2}

    first = await wb.post("/_sandbox/sellers", json=body)
    second = await wb.post("/_sandbox/sellers", json=body | {"reviews": 99})
    listed = await wb.get("/_sandbox/sellers")

    assert (first.status_code, first.json()["created"]) == (201, True)
    assert (second.status_code, second.json()["created"]) == (200, False)
    assert {k: first.json()[k] for k in ("seller_id", "token")} == {
        k: second.json()[k] for k in ("seller_id", "token")
    }
    assert [s["name"] for s in listed.json()["sellers"]] == ["same"]
    summary = (await wb.get(f"/_sandbox/sellers/{first.json()['seller_id']}")).json()
    assert summary["counts"]["review"]["total"] == 20


async def test_seller_summary_matches_the_marketplace_view(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller(reviews=300, questions=90, chats=7, limits=False)

    summary = (await wb.get(f"/_sandbox/sellers/{seller['seller_id']}")).json()

    for channel in ("review", "question"):
        counts = summary["counts"][channel]
        answered = await all_items(wb, seller["headers"], channel, True)
        waiting = await all_items(wb, seller["headers"], channel, False)
        assert (counts["answered"], counts["unanswered"]) == (len(answered), len(waiting))
        assert counts["total"] == len(answered) + len(waiting)
    assert summary["counts"]["chat"]["total"] == 7
    assert summary["settings"]["moderation_seconds"] == 5.0
    assert summary["rate_limits"]["override"] is True  # make_seller switched them off
    assert summary["faults"]["override"] is False


async def test_unknown_seller_is_404(wb: AsyncClient) -> None:
    assert (await wb.get("/_sandbox/sellers/nope")).status_code == 404
    assert (
        await wb.post("/_sandbox/sellers/nope/items", json={"channel": "review", "count": 1})
    ).status_code == 404


@pytest.mark.parametrize("channel", ["review", "question"])
async def test_new_items_arrive_now_and_unanswered(
    wb: AsyncClient, make_seller: MakeSeller, channel: str
) -> None:
    seller = await make_seller(limits=False)
    await advance(wb, 3600)

    added = await wb.post(
        f"/_sandbox/sellers/{seller['seller_id']}/items", json={"channel": channel, "count": 3}
    )

    ids = added.json()["ids"]
    assert added.json()["added"] == 3
    newest = (await all_items(wb, seller["headers"], channel, False))[:3]
    assert sorted(item["id"] for item in newest) == sorted(ids)
    for item in newest:
        created = datetime.fromisoformat(item["createdDate"].replace("Z", "+00:00")).timestamp()
        assert abs(created - (FROZEN_AT + 3600)) < 1


async def test_items_grow_with_the_clock(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(reviews=10, questions=10, chats=1, limits=False)
    url = f"/_sandbox/sellers/{seller['seller_id']}"

    await wb.patch(url, json={"new_items_per_minute": {"review": 30, "question": 6, "chat": 1}})
    await advance(wb, 120)
    counts = (await wb.get(url)).json()["counts"]

    assert counts["review"]["total"] == 10 + 60
    assert counts["question"]["total"] == 10 + 12
    assert counts["chat"]["total"] == 1 + 2


async def test_the_request_log_counts_windows(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller()
    url = f"/_sandbox/sellers/{seller['seller_id']}/requests"
    for _ in range(8):  # all at the same frozen instant: 6 pass, 2 are limited
        await wb.get("/api/v1/feedbacks/count", headers=seller["headers"])
    await advance(wb, 3)
    for _ in range(4):
        await wb.get("/api/v1/questions/count", headers=seller["headers"])
    await wb.get("/api/v1/seller/chats", headers=seller["headers"])

    log = (await wb.get(url)).json()

    feedbacks = log["by_group"]["feedbacks"]
    assert log["total"] == 13
    assert feedbacks == {
        "count": 12,
        "max_in_any_1s": 8,
        "max_in_any_10s": 12,
        "status_counts": {"200": 10, "429": 2},
    }
    assert log["by_group"]["chat"]["count"] == 1
    second = int(FROZEN_AT)
    assert log["per_second"] == [
        [second, "feedbacks", 8],
        [second + 3, "chat", 1],
        [second + 3, "feedbacks", 4],
    ]
    assert (await wb.delete(url)).status_code == 204
    assert (await wb.get(url)).json()["total"] == 0


def test_max_in_window_uses_half_open_windows() -> None:
    assert max_in_window([], 1.0) == 0
    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3
    assert max_in_window([0.0, 0.1, 0.2, 5.0, 9.9, 10.0], 10.0) == 5


async def test_the_clock_only_moves_forward(wb: AsyncClient) -> None:
    before = (await wb.get("/_sandbox/clock")).json()

    moved = await wb.post("/_sandbox/clock", json={"advance_seconds": 90})
    backwards = await wb.post("/_sandbox/clock", json={"advance_seconds": -1})

    assert before == {"now": FROZEN_AT, "offset_seconds": 0.0}
    assert moved.json() == {"now": FROZEN_AT + 90, "offset_seconds": 90.0}
    assert backwards.status_code == 422


async def test_reset_forgets_everything(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller()
    await wb.put("/_sandbox/faults", json={"error_rate": 1})
    await advance(wb, 10)

    response = await wb.post("/_sandbox/reset")

    assert response.json() == {"status": "reset"}
    assert (await wb.get("/api/v1/feedbacks/count", headers=seller["headers"])).status_code == 401
    assert (await wb.get("/_sandbox/faults")).json()["error_rate"] == 0.0
    assert (await wb.get("/_sandbox/clock")).json()["offset_seconds"] == 0.0
    assert (await wb.get("/_sandbox/health")).json()["sellers"] == 0
