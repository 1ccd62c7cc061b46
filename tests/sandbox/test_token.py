"""Revoking and restoring one seller's token (/_sandbox/sellers/{id}/token/...)."""

from httpx import AsyncClient

from tests.sandbox.conftest import MakeSeller
from tests.sandbox.test_auth import GATEWAY_KEYS

PATHS = ("/api/v1/feedbacks", "/api/v1/questions/count", "/api/v1/seller/chats", "/ping")


async def test_a_revoked_token_gets_the_gateway_401_until_restored(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller(name="revoked", limits=False)
    other = await make_seller(name="other", limits=False)
    url = f"/_sandbox/sellers/{seller['seller_id']}"

    revoked = await wb.post(f"{url}/token/revoke")
    refused = [await wb.get(path, headers=seller["headers"]) for path in PATHS]
    answer = await wb.post(
        "/api/v1/feedbacks/answer", json={"id": "x", "text": "Спасибо"}, headers=seller["headers"]
    )
    unaffected = await wb.get("/api/v1/feedbacks/count", headers=other["headers"])
    view = (await wb.get(url)).json()
    restored = await wb.post(f"{url}/token/restore")
    after = await wb.get("/api/v1/feedbacks/count", headers=seller["headers"])

    assert revoked.status_code == 200
    assert revoked.json() == {
        "seller_id": seller["seller_id"],
        "token": seller["token"],
        "revoked": True,
    }
    for response in [*refused, answer]:
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert set(body) == GATEWAY_KEYS
        assert (body["title"], body["status"]) == ("unauthorized", 401)
        assert body["detail"] == "token problem; token withdrawn"
    assert unaffected.status_code == 200
    assert view["revoked"] is True
    assert view["token"] == seller["token"]  # the same token, refused
    assert restored.json()["revoked"] is False
    assert after.status_code == 200
    deliveries = (await wb.get(f"{url}/deliveries")).json()
    assert deliveries["review"] == {}  # a refused answer never reached the method


async def test_refused_calls_are_in_the_request_log(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller(limits=False)
    url = f"/_sandbox/sellers/{seller['seller_id']}"
    await wb.get("/api/v1/feedbacks/count", headers=seller["headers"])
    await wb.post(f"{url}/token/revoke")
    await wb.post(f"{url}/token/revoke")  # idempotent
    for _ in range(3):
        await wb.get("/api/v1/feedbacks/count", headers=seller["headers"])
    await wb.get("/api/v1/seller/chats", headers=seller["headers"])

    log = (await wb.get(f"{url}/requests")).json()["by_group"]

    assert log["feedbacks"]["status_counts"] == {"200": 1, "401": 3}
    assert log["chat"]["status_counts"] == {"401": 1}
    listed = (await wb.get("/_sandbox/sellers")).json()["sellers"]
    assert [(s["seller_id"], s["revoked"]) for s in listed] == [(seller["seller_id"], True)]


async def test_revoking_an_unknown_seller_is_404(wb: AsyncClient) -> None:
    assert (await wb.post("/_sandbox/sellers/nope/token/revoke")).status_code == 404
    assert (await wb.post("/_sandbox/sellers/nope/token/restore")).status_code == 404
