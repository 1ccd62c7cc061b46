import base64
import json
import re

import pytest
from httpx import AsyncClient

from tests.sandbox.conftest import MakeSeller

GATEWAY_KEYS = {
    "title",
    "detail",
    "code",
    "requestId",
    "origin",
    "status",
    "statusText",
    "timestamp",
}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": ""}, {"Authorization": "not-a-token"}, {"Authorization": "Bearer x"}],
)
async def test_missing_or_unknown_token_is_the_gateway_401(
    wb: AsyncClient, make_seller: MakeSeller, headers: dict[str, str]
) -> None:
    await make_seller()

    for path in ("/api/v1/feedbacks", "/api/v1/questions/count", "/api/v1/seller/chats", "/ping"):
        response = await wb.get(path, headers=headers)

        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert set(body) == GATEWAY_KEYS
        assert body["title"] == "unauthorized"
        assert body["origin"] == "s2s-api-auth-catalog"
        assert (body["status"], body["statusText"]) == (401, "Unauthorized")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["timestamp"])
        assert re.fullmatch(r"[0-9a-f]{32}", body["requestId"])


async def test_bare_and_bearer_tokens_are_both_accepted(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller()

    for value in (seller["token"], f"Bearer {seller['token']}", f"bearer {seller['token']}"):
        response = await wb.get("/api/v1/feedbacks/count", headers={"Authorization": value})
        assert response.status_code == 200
        assert response.json()["error"] is False


async def test_a_token_only_sees_its_own_seller(wb: AsyncClient, make_seller: MakeSeller) -> None:
    first = await make_seller(name="first", reviews=30)
    second = await make_seller(name="second", reviews=50)

    counts = [
        (await wb.get("/api/v1/feedbacks/count", params={"isAnswered": "false"}, headers=h)).json()
        for h in (first["headers"], second["headers"])
    ]
    totals = [
        (await wb.get(f"/_sandbox/sellers/{s['seller_id']}")).json()["counts"]["review"]
        for s in (first, second)
    ]
    assert [c["data"] for c in counts] == [t["unanswered"] for t in totals]
    assert first["token"] != second["token"]


async def test_ping_checks_the_token(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller()

    response = await wb.get("/ping", headers=seller["headers"])

    assert response.status_code == 200
    assert response.json()["Status"] == "OK"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+03:00", response.json()["TS"])


async def test_the_token_is_a_jwt_with_the_claims_clients_read(make_seller: MakeSeller) -> None:
    seller = await make_seller()
    _, payload, _ = seller["token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

    assert {"exp", "s", "sid", "oid", "t"} <= set(claims)
    assert claims["sid"] == seller["seller_id"]
    assert claims["t"] is True
    assert claims["s"] & (1 << 7)
    assert claims["s"] & (1 << 9)
