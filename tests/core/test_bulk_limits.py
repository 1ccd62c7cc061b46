"""A bulk request with more items than its endpoint takes is 413 `payload_too_large`, naming the
maximum; at the maximum it is served. Other validation errors stay 422."""

from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.dispatch.models import OutboundReply
from app.dispatch.schemas import MAX_BULK_REPLIES
from app.interactions.schemas import MAX_BULK_IDS
from tests import factories

MISSING = 10**12  # an id nobody has


def assert_too_many(response: Response, field: str, maximum: int) -> None:
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["error"] == {
        "code": "payload_too_large",
        "message": f"at most {maximum} {field} in one request",
        "details": [{"loc": ["body", field], "max_items": maximum}],
    }
    assert body["request_id"] == response.headers["x-request-id"]


async def test_bulk_triage_takes_at_most_max_bulk_ids(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller, headers = await factories.operator(session, client, "triage@example.com")
    item = await factories.create_interaction(session, seller)
    ids = [item.id] + [MISSING + i for i in range(MAX_BULK_IDS)]

    too_many = await client.post(
        "/api/v1/interactions/bulk",
        json={"ids": ids, "changes": {"is_read": True}},
        headers=headers,
    )
    await session.refresh(item)
    assert item.is_read is False
    at_max = await client.post(
        "/api/v1/interactions/bulk",
        json={"ids": ids[:MAX_BULK_IDS], "changes": {"is_read": True}},
        headers=headers,
    )

    assert MAX_BULK_IDS == 500
    assert_too_many(too_many, "ids", MAX_BULK_IDS)
    assert at_max.status_code == 200, at_max.text
    assert at_max.json()["updated"] == [item.id]
    assert len(at_max.json()["not_found"]) == MAX_BULK_IDS - 1


async def test_bulk_replies_take_at_most_max_bulk_replies(
    session: AsyncSession, client: AsyncClient, settings: Settings
) -> None:
    seller, headers = await factories.operator(session, client, "replies@example.com")
    await factories.connect_wildberries(session, seller, settings)
    item = await factories.create_interaction(session, seller)
    items = [{"interaction_id": item.id, "text": "Спасибо за отзыв!"}] + [
        {"interaction_id": MISSING + i, "text": "Спасибо!"} for i in range(MAX_BULK_REPLIES)
    ]

    too_many = await client.post("/api/v1/replies/bulk", json={"items": items}, headers=headers)
    queued = await session.scalar(select(func.count()).select_from(OutboundReply))
    at_max = await client.post(
        "/api/v1/replies/bulk", json={"items": items[:MAX_BULK_REPLIES]}, headers=headers
    )

    assert MAX_BULK_REPLIES == 100
    assert_too_many(too_many, "items", MAX_BULK_REPLIES)
    assert queued == 0
    assert at_max.status_code == 200, at_max.text
    results = at_max.json()["items"]
    assert len(results) == MAX_BULK_REPLIES
    assert results[0]["reply"]["state"] == "queued"
    assert {r["error"]["code"] for r in results[1:]} == {"not_found"}


async def test_other_invalid_bulk_bodies_stay_422(
    session: AsyncSession, client: AsyncClient
) -> None:
    _, headers = await factories.operator(session, client, "invalid@example.com")
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("/api/v1/interactions/bulk", {"ids": [], "changes": {"is_read": True}}),
        ("/api/v1/interactions/bulk", {"ids": ["x"], "changes": {"is_read": True}}),
        ("/api/v1/replies/bulk", {"items": []}),
        ("/api/v1/replies/bulk", {"items": [{"interaction_id": 1, "text": "x" * 5001}]}),
    ]

    for path, body in bodies:
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == 422, (path, body, response.text)
        assert response.json()["error"]["code"] == "validation_error"


async def test_a_too_long_list_outside_the_body_stays_422(
    session: AsyncSession, client: AsyncClient
) -> None:
    _, headers = await factories.operator(session, client, "query@example.com")

    response = await client.get(
        "/api/v1/interactions", params={"rating": [1, 2, 3, 4, 5, 5]}, headers=headers
    )

    assert response.status_code == 422, response.text


async def test_the_limits_are_in_the_openapi_schema(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]

    for path, schema, field, maximum in (
        ("/api/v1/interactions/bulk", "BulkUpdate", "ids", MAX_BULK_IDS),
        ("/api/v1/replies/bulk", "BulkReplyRequest", "items", MAX_BULK_REPLIES),
    ):
        responses = spec["paths"][path]["post"]["responses"]
        assert responses["413"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorEnvelope"
        }
        assert f"more than {maximum}" in responses["413"]["description"]
        assert schemas[schema]["properties"][field]["maxItems"] == maximum
