"""Failed logins are limited per account and per client address, in Redis (app/auth/throttle.py).

The window passing is simulated by moving the counters' expiry to now (PEXPIRE 0), the moment
Redis would drop them by itself: no test sleeps through a window.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import throttle
from app.auth.exceptions import LoginThrottled
from app.core.config import Settings
from app.core.redis import create_redis
from tests import factories

WINDOW = 15 * 60  # the default window, seconds
WRONG = "not the password"


@asynccontextmanager
async def client_at(app: FastAPI, host: str) -> AsyncIterator[AsyncClient]:
    """A client whose requests come from `host` (request.client.host)."""
    transport = ASGITransport(app=app, raise_app_exceptions=False, client=(host, 40000))
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def login(client: AsyncClient, email: str, password: str = factories.PASSWORD) -> Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


def assert_throttled(response: Response) -> int:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["error"]["code"] == "login_throttled"
    assert body["request_id"] == response.headers["x-request-id"]
    assert "access_token" not in body
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW
    assert body["error"]["details"] == {"retry_after_seconds": retry_after}
    return retry_after


async def pass_the_window(redis: Redis, email: str, address: str = "127.0.0.1") -> None:
    for key in throttle.keys(email, address):
        await redis.pexpire(key, 0)


async def test_five_failures_lock_the_account_even_for_the_right_password(
    session: AsyncSession, client: AsyncClient, redis: Redis
) -> None:
    seller = await factories.create_seller(session)
    await factories.create_user(session, seller, "locked@example.com")

    failures = [await login(client, "locked@example.com", WRONG) for _ in range(5)]
    locked = [await login(client, "locked@example.com") for _ in range(3)]

    assert [r.status_code for r in failures] == [401] * 5
    retry_after = [assert_throttled(r) for r in locked]
    assert retry_after[0] > WINDOW - 10
    account_key, _ = throttle.keys("locked@example.com", "127.0.0.1")
    # refused attempts are not counted: they do not prolong the lockout
    assert await redis.get(account_key) == "5"
    assert WINDOW * 1000 - 10_000 < await redis.pttl(account_key) <= WINDOW * 1000


async def test_once_the_window_has_passed_the_right_password_works_again(
    session: AsyncSession, client: AsyncClient, redis: Redis
) -> None:
    seller = await factories.create_seller(session)
    await factories.create_user(session, seller, "back@example.com")
    for _ in range(5):
        await login(client, "back@example.com", WRONG)
    assert_throttled(await login(client, "back@example.com"))

    await pass_the_window(redis, "back@example.com")

    assert (await login(client, "back@example.com")).status_code == 200


async def test_a_success_clears_the_accounts_failures(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller = await factories.create_seller(session)
    await factories.create_user(session, seller, "forgetful@example.com")

    statuses = []
    for _ in range(2):
        statuses += [
            (await login(client, "forgetful@example.com", WRONG)).status_code for _ in range(4)
        ]
        statuses.append((await login(client, "forgetful@example.com")).status_code)

    assert statuses == [401, 401, 401, 401, 200] * 2
    # and the count starts again from the success: five more failures lock it
    for _ in range(5):
        await login(client, "forgetful@example.com", WRONG)
    assert_throttled(await login(client, "forgetful@example.com"))


async def test_an_unknown_email_is_throttled_exactly_like_a_known_one(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller = await factories.create_seller(session)
    await factories.create_user(session, seller, "real@example.com")

    answers = {}
    for email in ("real@example.com", "nobody@example.com"):
        answers[email] = [await login(client, email, WRONG) for _ in range(6)]

    def shape(response: Response) -> tuple[int, str, str]:
        error = response.json()["error"]
        return response.status_code, error["code"], error["message"]

    real, unknown = answers["real@example.com"], answers["nobody@example.com"]
    assert [shape(r) for r in real] == [shape(r) for r in unknown]
    assert [r.status_code for r in unknown] == [401] * 5 + [429]
    assert_throttled(unknown[-1])


async def test_the_email_is_counted_the_way_login_looks_it_up(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller = await factories.create_seller(session)
    await factories.create_user(session, seller, "case@example.com")

    for spelling in (
        "Case@Example.com",
        " case@example.com",
        "CASE@EXAMPLE.COM ",
        "case@example.com",
        "cAse@example.COM",
    ):
        assert (await login(client, spelling, WRONG)).status_code == 401

    assert_throttled(await login(client, "case@example.com"))


async def test_failures_from_one_address_lock_that_address_and_no_other(
    app: FastAPI, session: AsyncSession, settings: Settings
) -> None:
    app.state.settings = settings.model_copy(update={"login_max_failures_per_address": 4})
    seller = await factories.create_seller(session)
    await factories.create_user(session, seller, "victim@example.com")

    async with client_at(app, "203.0.113.7") as attacker, client_at(app, "198.51.100.2") as office:
        guesses = [await login(attacker, f"user{i}@example.com", WRONG) for i in range(4)]
        from_attacker = await login(attacker, "victim@example.com")
        from_office = await login(office, "victim@example.com")

    assert [r.status_code for r in guesses] == [401] * 4
    assert_throttled(from_attacker)
    assert from_office.status_code == 200


async def test_successful_logins_do_not_use_up_the_address(
    app: FastAPI, session: AsyncSession, settings: Settings
) -> None:
    app.state.settings = settings.model_copy(update={"login_max_failures_per_address": 2})
    seller = await factories.create_seller(session)
    for i in range(4):
        await factories.create_user(session, seller, f"colleague{i}@example.com")

    async with client_at(app, "192.0.2.10") as office:
        statuses = [
            (await login(office, f"colleague{i}@example.com")).status_code for i in range(4)
        ]
        statuses.append((await login(office, "colleague0@example.com", WRONG)).status_code)
        statuses.append((await login(office, "colleague1@example.com")).status_code)

    assert statuses == [200, 200, 200, 200, 401, 200]


@pytest.mark.parametrize(
    ("host", "counted_as"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        (None, "unknown"),
        ("", "unknown"),
        ("testclient", "testclient"),
    ],
)
def test_client_addresses_are_counted_per_ipv4_address_and_per_ipv6_64(
    host: str | None, counted_as: str
) -> None:
    assert throttle.client_address(host) == counted_as


async def test_an_ipv6_client_cannot_escape_by_changing_the_host_part(
    app: FastAPI, session: AsyncSession, settings: Settings
) -> None:
    app.state.settings = settings.model_copy(update={"login_max_failures_per_address": 3})
    seller = await factories.create_seller(session)
    await factories.create_user(session, seller, "v6@example.com")

    for i in range(3):
        async with client_at(app, f"2001:db8:1:2::{i + 1}") as guesser:
            assert (await login(guesser, f"guess{i}@example.com", WRONG)).status_code == 401
    async with (
        client_at(app, "2001:db8:1:2::99") as same_64,
        client_at(app, "2001:db8:9::1") as other,
    ):
        assert_throttled(await login(same_64, "v6@example.com"))
        assert (await login(other, "v6@example.com")).status_code == 200


async def test_concurrent_guesses_cannot_pass_the_limit(redis: Redis, settings: Settings) -> None:
    limiter = throttle.LoginThrottle(redis, settings)

    results = await asyncio.gather(
        *(limiter.attempt("target@example.com", f"198.51.100.{i}") for i in range(20)),
        return_exceptions=True,
    )

    assert results.count(None) == settings.login_max_failures_per_account == 5
    assert all(isinstance(r, LoginThrottled) for r in results if r is not None)


async def test_login_fails_closed_with_503_when_redis_is_down(
    app: FastAPI, session: AsyncSession, client: AsyncClient
) -> None:
    seller = await factories.create_seller(session)
    await factories.create_user(session, seller, "nored@example.com")
    working = app.state.redis
    app.state.redis = create_redis("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        right = await login(client, "nored@example.com")
        wrong = await login(client, "nored@example.com", WRONG)
    finally:
        await app.state.redis.aclose()
        app.state.redis = working

    for response in (right, wrong):
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "login_unavailable"
        assert response.headers["retry-after"] == "5"
        assert response.json()["request_id"] == response.headers["x-request-id"]
        assert "access_token" not in response.json()
    assert (await login(client, "nored@example.com")).status_code == 200
