"""Per-token buckets: feedbacks 3/s burst 6 (answers included), chat 10 per 10 s burst 10.

The clock is frozen, so a bucket refills only when a test advances it.
"""

from httpx import AsyncClient

from tests.sandbox.conftest import MakeSeller, advance


async def test_feedbacks_bucket_allows_the_burst_then_429(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller()
    headers = seller["headers"]
    remaining = []
    for _ in range(6):
        response = await wb.get("/api/v1/feedbacks/count", headers=headers)
        assert response.status_code == 200
        remaining.append(response.headers["X-Ratelimit-Remaining"])

    limited = await wb.get("/api/v1/questions/count", headers=headers)

    assert remaining == ["5", "4", "3", "2", "1", "0"]
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.headers["X-Ratelimit-Retry"] == "1"
    assert limited.headers["X-Ratelimit-Limit"] == "6"
    assert limited.headers["X-Ratelimit-Reset"] == "2"
    assert "X-Ratelimit-Remaining" not in limited.headers
    body = limited.json()
    assert (body["title"], body["status"], body["statusText"]) == (
        "too many requests",
        429,
        "Too Many Requests",
    )
    assert body["origin"] == "s2s-api-auth-catalog"
    assert body["detail"].startswith("limited by ")

    await advance(wb, 1)  # three tokens back
    statuses = [
        (await wb.get("/api/v1/feedbacks/count", headers=headers)).status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


async def test_answers_share_the_feedbacks_bucket(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller()
    headers = seller["headers"]
    for _ in range(6):
        await wb.post(
            "/api/v1/feedbacks/answer",
            json={"id": "unknownId00000000000", "text": "Спасибо"},
            headers=headers,
        )

    response = await wb.patch(
        "/api/v1/questions", json={"id": "x", "wasViewed": True}, headers=headers
    )

    assert response.status_code == 429


async def test_chat_bucket_is_separate(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller()
    headers = seller["headers"]
    for _ in range(6):
        await wb.get("/api/v1/feedbacks/count", headers=headers)

    statuses = [
        (await wb.get("/api/v1/seller/chats", headers=headers)).status_code for _ in range(11)
    ]
    limited = await wb.get("/api/v1/seller/events", headers=headers)

    assert statuses == [200] * 10 + [429]
    assert limited.headers["X-Ratelimit-Limit"] == "10"
    assert limited.headers["X-Ratelimit-Reset"] == "10"
    assert (await wb.get("/ping", headers=headers)).status_code == 200  # ping is not limited


async def test_buckets_are_per_token(wb: AsyncClient, make_seller: MakeSeller) -> None:
    first = await make_seller(name="first")
    second = await make_seller(name="second")
    for _ in range(6):
        await wb.get("/api/v1/feedbacks/count", headers=first["headers"])

    assert (await wb.get("/api/v1/feedbacks/count", headers=first["headers"])).status_code == 429
    assert (await wb.get("/api/v1/feedbacks/count", headers=second["headers"])).status_code == 200


async def test_limits_can_be_switched_off_globally(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller()

    assert (await wb.put("/_sandbox/rate-limits", json={"enabled": False})).status_code == 200
    statuses = {
        (await wb.get("/api/v1/feedbacks/count", headers=seller["headers"])).status_code
        for _ in range(50)
    }
    response = await wb.get("/api/v1/feedbacks/count", headers=seller["headers"])

    assert statuses == {200}
    assert "X-Ratelimit-Remaining" not in response.headers


async def test_limits_can_be_changed_per_seller(wb: AsyncClient, make_seller: MakeSeller) -> None:
    tight = await make_seller(name="tight")
    normal = await make_seller(name="normal")
    limits = {"feedbacks": {"rate": 1, "burst": 2}, "chat": {"rate": 1, "burst": 10}}

    put = await wb.put(f"/_sandbox/sellers/{tight['seller_id']}/rate-limits", json=limits)
    tight_statuses = [
        (await wb.get("/api/v1/feedbacks/count", headers=tight["headers"])).status_code
        for _ in range(3)
    ]
    normal_statuses = [
        (await wb.get("/api/v1/feedbacks/count", headers=normal["headers"])).status_code
        for _ in range(3)
    ]
    removed = await wb.delete(f"/_sandbox/sellers/{tight['seller_id']}/rate-limits")
    effective = await wb.get(f"/_sandbox/sellers/{tight['seller_id']}/rate-limits")

    assert put.json()["override"] is True
    assert tight_statuses == [200, 200, 429]
    assert normal_statuses == [200, 200, 200]
    assert removed.status_code == 204
    assert effective.json() == {
        "override": False,
        "enabled": True,
        "feedbacks": {"rate": 3.0, "burst": 6},
        "chat": {"rate": 1.0, "burst": 10},
    }


async def test_invalid_limits_are_refused(wb: AsyncClient) -> None:
    response = await wb.put("/_sandbox/rate-limits", json={"feedbacks": {"rate": 0, "burst": 6}})

    assert response.status_code == 422
