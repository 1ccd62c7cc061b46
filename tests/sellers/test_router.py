import httpx
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.egress import Purpose
from app.core.security import SecretBox
from app.dev.embedded import free_port
from app.sellers.models import MarketplaceAccount
from tests import egress, factories
from tests.egress import FakeDns, listening
from tests.marketplace import Marketplace, wire


async def _connect(client: AsyncClient, headers: dict[str, str], token: str) -> int:
    response = await client.post(
        "/api/v1/marketplace-accounts",
        json={"marketplace": "wildberries", "name": "Main", "token": token},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def _accounts(session: AsyncSession, seller_id: int) -> list[MarketplaceAccount]:
    result = await session.execute(
        select(MarketplaceAccount).where(MarketplaceAccount.seller_id == seller_id)
    )
    return list(result.scalars())


def _answering(status: int, body: bytes = b"") -> httpx.MockTransport:
    """A marketplace that answers every request with `status` (the sandbox's /ping cannot be
    made to fail: WB's ping is not subject to faults)."""
    return httpx.MockTransport(lambda _: httpx.Response(status, content=body))


def _timing_out() -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    return httpx.MockTransport(handler)


async def test_marketplace_token_is_stored_encrypted_and_never_returned(
    session: AsyncSession, client: AsyncClient, app: FastAPI, marketplace: Marketplace
) -> None:
    seller, headers = await factories.operator(session, client, "owner@example.com")
    token = await marketplace.token()

    account_id = await _connect(client, headers, token)

    row = (
        await session.execute(select(MarketplaceAccount).where(MarketplaceAccount.id == account_id))
    ).scalar_one()
    assert row.seller_id == seller.id
    assert row.last_error is None
    assert token not in row.token_encrypted
    box: SecretBox = app.state.secret_box
    assert box.decrypt(row.token_encrypted) == token
    for path in ("/api/v1/marketplace-accounts", f"/api/v1/marketplace-accounts/{account_id}"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 200
        assert token not in response.text
        assert "token_encrypted" not in response.text
        assert row.token_encrypted not in response.text


async def test_rotating_the_token_re_encrypts_it(
    session: AsyncSession, client: AsyncClient, app: FastAPI, marketplace: Marketplace
) -> None:
    _, headers = await factories.operator(session, client, "rot@example.com")
    account_id = await _connect(client, headers, await marketplace.token("old key"))
    new_token = await marketplace.token("new key")

    response = await client.put(
        f"/api/v1/marketplace-accounts/{account_id}/token",
        json={"token": new_token},
        headers=headers,
    )

    assert response.status_code == 200
    assert response.json()["token_rotated_at"] is not None
    assert response.json()["last_error"] is None
    assert new_token not in response.text
    row = await session.get(MarketplaceAccount, account_id)
    assert row is not None
    await session.refresh(row)
    assert app.state.secret_box.decrypt(row.token_encrypted) == new_token


async def test_second_account_for_the_same_marketplace_is_a_409(
    session: AsyncSession, client: AsyncClient, marketplace: Marketplace
) -> None:
    _, headers = await factories.operator(session, client, "dup@example.com")
    account_id = await _connect(client, headers, await marketplace.token())

    response = await client.post(
        "/api/v1/marketplace-accounts",
        json={"marketplace": "wildberries", "token": await marketplace.token("another")},
        headers=headers,
    )

    assert response.status_code == 409
    assert response.json()["error"]["details"] == {"account_id": account_id}


async def test_unknown_marketplace_and_short_token_are_422(
    session: AsyncSession, client: AsyncClient
) -> None:
    _, headers = await factories.operator(session, client, "bad@example.com")

    for body in ({"marketplace": "amazon", "token": "long-enough-token"},
                 {"marketplace": "ozon", "token": "x7q9z"}):  # fmt: skip
        response = await client.post("/api/v1/marketplace-accounts", json=body, headers=headers)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"
        assert body["token"] not in response.text


async def test_another_sellers_account_answers_404_on_every_endpoint(
    session: AsyncSession, client: AsyncClient, marketplace: Marketplace
) -> None:
    _, alice = await factories.operator(session, client, "alice@example.com", "Alice shop")
    _, mallory = await factories.operator(session, client, "mallory@example.com", "Mallory shop")
    account_id = await _connect(client, alice, await marketplace.token("alice"))
    base = f"/api/v1/marketplace-accounts/{account_id}"
    mallorys_token = await marketplace.token("mallory")

    attempts = [
        await client.get(base, headers=mallory),
        await client.put(f"{base}/token", json={"token": mallorys_token}, headers=mallory),
        await client.post(f"{base}/check", headers=mallory),
        await client.delete(base, headers=mallory),
    ]

    for response in attempts:
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert (await client.get("/api/v1/marketplace-accounts", headers=mallory)).json()["items"] == []
    still_there = await client.get(base, headers=alice)
    assert still_there.status_code == 200
    assert still_there.json()["token_rotated_at"] is None


async def test_seller_endpoint_shows_the_callers_own_seller(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller, headers = await factories.operator(session, client, "me@example.com", "My shop")

    response = await client.get("/api/v1/seller", headers=headers)

    assert response.status_code == 200
    assert response.json()["id"] == seller.id
    assert response.json()["name"] == "My shop"


async def test_disconnect_removes_the_account(
    session: AsyncSession, client: AsyncClient, marketplace: Marketplace
) -> None:
    _, headers = await factories.operator(session, client, "del@example.com")
    account_id = await _connect(client, headers, await marketplace.token())

    deleted = await client.delete(f"/api/v1/marketplace-accounts/{account_id}", headers=headers)

    assert deleted.status_code == 204
    gone = await client.get(f"/api/v1/marketplace-accounts/{account_id}", headers=headers)
    assert gone.status_code == 404


# --- token validation ------------------------------------------------------------------------


async def test_a_token_the_marketplace_rejects_is_a_422_and_nothing_is_stored(
    session: AsyncSession, client: AsyncClient, marketplace: Marketplace
) -> None:
    seller, headers = await factories.operator(session, client, "rejected@example.com")
    seller_id = seller.id  # a failed request rolls back and expires its objects
    bogus = "eyJhbGciOiJFUzI1NiJ9.not-a-token-the-sandbox-issued.signature"

    response = await client.post(
        "/api/v1/marketplace-accounts",
        json={"marketplace": "wildberries", "token": bogus},
        headers=headers,
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "marketplace_token_rejected"
    assert error["details"] == {"status": 401}
    assert bogus not in response.text
    assert "not-a-token" not in response.text
    assert await _accounts(session, seller_id) == []


async def test_rotating_to_a_rejected_token_keeps_the_old_one(
    session: AsyncSession, client: AsyncClient, app: FastAPI, marketplace: Marketplace
) -> None:
    _, headers = await factories.operator(session, client, "keep@example.com")
    good = await marketplace.token()
    account_id = await _connect(client, headers, good)

    response = await client.put(
        f"/api/v1/marketplace-accounts/{account_id}/token",
        json={"token": "definitely-not-a-wb-token"},
        headers=headers,
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "marketplace_token_rejected"
    assert "definitely-not-a-wb-token" not in response.text
    row = await session.get(MarketplaceAccount, account_id)
    assert row is not None
    await session.refresh(row)
    assert app.state.secret_box.decrypt(row.token_encrypted) == good
    assert row.token_rotated_at is None


async def test_an_unreachable_marketplace_is_a_502_and_nothing_is_stored(
    session: AsyncSession, client: AsyncClient, app: FastAPI, settings: Settings
) -> None:
    seller, headers = await factories.operator(session, client, "down@example.com")
    seller_id = seller.id  # a failed request rolls back and expires its objects
    nobody = f"http://127.0.0.1:{free_port()}"  # nobody listens: connection refused
    wire(app, settings, nobody)
    egress.allow(app, Purpose.MARKETPLACE, nobody)
    app.state.marketplace_transport = None

    response = await client.post(
        "/api/v1/marketplace-accounts",
        json={"marketplace": "wildberries", "token": "some-token-value"},
        headers=headers,
    )

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "marketplace_unreachable"
    assert response.json()["error"]["message"] == "the marketplace check failed: connection failed"
    assert "some-token-value" not in response.text
    assert await _accounts(session, seller_id) == []


async def test_a_marketplace_address_the_policy_refuses_is_never_called(
    session: AsyncSession, client: AsyncClient, app: FastAPI, settings: Settings
) -> None:
    seller, headers = await factories.operator(session, client, "inside@example.com")
    seller_id = seller.id  # a failed request rolls back and expires its objects
    app.state.marketplace_transport = None
    async with listening() as internal:  # one of our services, not on the allow-list
        for url in (internal.origin, f"http://2130706433:{internal.port}",
                    f"http://[::ffff:127.0.0.1]:{internal.port}"):  # fmt: skip
            wire(app, settings, url)
            response = await client.post(
                "/api/v1/marketplace-accounts",
                json={"marketplace": "wildberries", "token": "some-token-value"},
                headers=headers,
            )
            assert response.status_code == 502, url
            error = response.json()["error"]
            assert error["message"] == "the marketplace check failed: refused by policy", url
            assert str(internal.port) not in response.text
    assert internal.connections == 0
    assert await _accounts(session, seller_id) == []


async def test_a_marketplace_host_rebound_inside_is_refused(
    session: AsyncSession, client: AsyncClient, app: FastAPI, marketplace: Marketplace
) -> None:
    """The real marketplace host (WB_FEEDBACKS_BASE_URL's default) once its DNS answer points
    inside: the check is refused and the network is never asked."""
    _, headers = await factories.operator(session, client, "rebound@example.com")
    account_id = await _connect(client, headers, await marketplace.token())
    seen: list[httpx.Request] = []
    app.state.marketplace_transport = httpx.MockTransport(
        lambda request: seen.append(request) or httpx.Response(200, json={"Status": "OK"})
    )
    wire(app, app.state.settings, "https://feedbacks-api.wildberries.ru")
    dns: FakeDns = app.state.egress.resolver
    check = f"/api/v1/marketplace-accounts/{account_id}/check"
    assert (await client.post(check, headers=headers)).json()["valid"] is True  # public
    assert [r.url.host for r in seen] == [dns.answers["feedbacks-api.wildberries.ru"][0]]

    dns.answers["feedbacks-api.wildberries.ru"] = ["10.0.0.1"]
    response = await client.post(check, headers=headers)

    assert response.status_code == 502
    assert response.json()["error"]["message"] == "the marketplace check failed: refused by policy"
    assert "10.0.0.1" not in response.text
    assert len(seen) == 1


async def test_marketplace_5xx_and_timeouts_are_502(
    session: AsyncSession, client: AsyncClient, app: FastAPI, marketplace: Marketplace
) -> None:
    seller, headers = await factories.operator(session, client, "flaky@example.com")
    seller_id = seller.id  # a failed request rolls back and expires its objects
    token = await marketplace.token()

    for transport, status in (
        (_answering(503, b'{"title":"service unavailable"}'), 503),
        (_answering(502, b"<html>bad gateway</html>"), 502),
        (_answering(200, b"<html>captive portal</html>"), 200),  # 200 but not the ping's answer
        (_timing_out(), None),
    ):
        app.state.marketplace_transport = transport
        response = await client.post(
            "/api/v1/marketplace-accounts",
            json={"marketplace": "wildberries", "token": token},
            headers=headers,
        )
        assert response.status_code == 502, response.text
        assert response.json()["error"]["code"] == "marketplace_unreachable"
        assert response.json()["error"]["details"] == {"status": status}
        assert token not in response.text
    assert await _accounts(session, seller_id) == []


async def test_a_rate_limited_check_is_a_503_with_the_wait(
    session: AsyncSession, client: AsyncClient, app: FastAPI
) -> None:
    _, headers = await factories.operator(session, client, "busy@example.com")
    app.state.marketplace_transport = httpx.MockTransport(
        lambda _: httpx.Response(429, headers={"X-Ratelimit-Retry": "17"})
    )

    response = await client.post(
        "/api/v1/marketplace-accounts",
        json={"marketplace": "wildberries", "token": "some-token-value"},
        headers=headers,
    )

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "marketplace_rate_limited"
    assert error["details"] == {"status": 429, "retry_after_seconds": 17.0}


async def test_ozon_tokens_cannot_be_checked_so_they_are_not_stored(
    session: AsyncSession, client: AsyncClient, marketplace: Marketplace
) -> None:
    seller, headers = await factories.operator(session, client, "ozon@example.com")
    seller_id = seller.id  # a failed request rolls back and expires its objects

    response = await client.post(
        "/api/v1/marketplace-accounts",
        json={"marketplace": "ozon", "token": "an-ozon-api-key"},
        headers=headers,
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "marketplace_not_supported"
    assert await _accounts(session, seller_id) == []


async def test_check_records_the_verdict_in_last_error(
    session: AsyncSession, client: AsyncClient, marketplace: Marketplace
) -> None:
    _, headers = await factories.operator(session, client, "check@example.com")
    account_id = await _connect(client, headers, await marketplace.token("checked shop"))
    check = f"/api/v1/marketplace-accounts/{account_id}/check"

    fine = await client.post(check, headers=headers)
    assert fine.status_code == 200
    assert fine.json()["valid"] is True
    assert fine.json()["account"]["last_error"] is None

    await marketplace.forget_everyone()  # the token stops working, as a revoked one does
    revoked = await client.post(check, headers=headers)
    assert revoked.status_code == 200
    assert revoked.json()["valid"] is False
    last_error = revoked.json()["account"]["last_error"]
    assert "rejected" in last_error
    assert "401" in last_error
    stored = await client.get(f"/api/v1/marketplace-accounts/{account_id}", headers=headers)
    assert stored.json()["last_error"] == last_error

    await marketplace.token("checked shop")  # the sandbox issues the same token again
    back = await client.post(check, headers=headers)
    assert back.json()["valid"] is True
    assert back.json()["account"]["last_error"] is None


async def test_check_when_the_marketplace_is_down_is_a_502_and_keeps_last_error(
    session: AsyncSession, client: AsyncClient, app: FastAPI, marketplace: Marketplace
) -> None:
    _, headers = await factories.operator(session, client, "check-down@example.com")
    account_id = await _connect(client, headers, await marketplace.token())
    await marketplace.forget_everyone()
    check = f"/api/v1/marketplace-accounts/{account_id}/check"
    rejected = (await client.post(check, headers=headers)).json()["account"]["last_error"]

    app.state.marketplace_transport = _answering(500)
    response = await client.post(check, headers=headers)

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "marketplace_unreachable"
    stored = await client.get(f"/api/v1/marketplace-accounts/{account_id}", headers=headers)
    assert stored.json()["last_error"] == rejected


async def test_a_pasted_token_is_trimmed_before_the_check(
    session: AsyncSession, client: AsyncClient, app: FastAPI, marketplace: Marketplace
) -> None:
    _, headers = await factories.operator(session, client, "paste@example.com")
    token = await marketplace.token()

    account_id = await _connect(client, headers, f" {token}\n")

    row = await session.get(MarketplaceAccount, account_id)
    assert row is not None
    assert app.state.secret_box.decrypt(row.token_encrypted) == token
