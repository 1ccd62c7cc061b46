"""The Wildberries connector against a scripted marketplace (httpx.MockTransport): its one retry
policy, its Retry-After parsing, its token check and its limits. No Redis: a recording limiter."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.connectors.base import (
    AuthError,
    BadRequest,
    Environment,
    MaybeDelivered,
    RateLimited,
    RetryPolicy,
    TokenVerdict,
    TransientError,
)
from app.connectors.wildberries import CONNECTOR
from app.connectors.wildberries.client import WildberriesClient, retry_after_seconds
from app.connectors.wildberries.limits import (
    CHAT,
    DEFAULT_LIMITS,
    FEEDBACKS,
    MARKETPLACE_LIMITS,
)
from app.core.config import Settings
from app.core.egress import EgressPolicy
from app.core.ratelimit import Limit, Priority

URL = "http://sandbox"
QUICK = RetryPolicy(max_attempts=3, max_rate_limited=2, backoff_base=0.001, backoff_cap=0.002)
Handler = Callable[[httpx.Request], httpx.Response]


class RecordingLimiter:
    """Grants every token at once and remembers what was asked."""

    def __init__(self) -> None:
        self.acquired: list[tuple[str, Limit | None, Priority]] = []
        self.penalties: list[tuple[str, float]] = []

    async def acquire(
        self, seller_id: int, category: str, *, limit: Limit | None, priority: Priority
    ) -> float:
        self.acquired.append((category, limit, priority))
        return 0.0

    async def penalize(self, seller_id: int, category: str, seconds: float) -> None:
        self.penalties.append((category, seconds))


def _settings() -> Settings:
    return Settings(
        egress_allow_marketplace=[URL], wb_feedbacks_base_url=URL, wb_buyer_chat_base_url=URL
    )


def _env(handler: Handler) -> Environment:
    settings = _settings()
    return Environment(settings, EgressPolicy.from_settings(settings), httpx.MockTransport(handler))


def _client(handler: Handler, limiter: RecordingLimiter, **limits: Limit) -> WildberriesClient:
    return CONNECTOR.connect(
        "token",
        seller_id=1,
        limiter=limiter,  # type: ignore[arg-type]
        env=_env(handler),
        limits=limits,
        retry=QUICK,
    )


def _scripted(*responses: httpx.Response) -> tuple[Handler, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler, seen


def _page(items: list[Any]) -> httpx.Response:
    return httpx.Response(200, json={"data": {"feedbacks": items}, "error": False})


def test_default_limits_are_the_marketplace_rates_with_one_token_in_hand() -> None:
    assert MARKETPLACE_LIMITS[FEEDBACKS] == Limit(rate=3.0, burst=6)
    assert MARKETPLACE_LIMITS[CHAT] == Limit(rate=1.0, burst=10)
    assert DEFAULT_LIMITS[FEEDBACKS] == Limit(rate=3.0, burst=5)
    assert DEFAULT_LIMITS[CHAT] == Limit(rate=1.0, burst=9)
    assert CONNECTOR.default_limits == DEFAULT_LIMITS


@pytest.mark.parametrize(
    ("headers", "default", "seconds"),
    [
        ({"X-Ratelimit-Retry": "7", "Retry-After": "3"}, 1.0, 7.0),  # WB's own header first
        ({"Retry-After": "3"}, 1.0, 3.0),
        ({"Retry-After": "soon", "X-Ratelimit-Retry": "x"}, 1.0, 1.0),
        ({}, 30.0, 30.0),
        ({"Retry-After": "-5"}, 1.0, 0.0),
        ({"Retry-After": "86400"}, 1.0, 600.0),  # a broken header does not park a worker
    ],
)
def test_retry_after(headers: dict[str, str], default: float, seconds: float) -> None:
    assert retry_after_seconds(httpx.Response(429, headers=headers), default=default) == seconds


async def test_reads_retry_5xx_with_backoff_and_take_a_token_each_time() -> None:
    handler, seen = _scripted(httpx.Response(503), httpx.Response(502), _page([]))
    limiter = RecordingLimiter()
    override = Limit(1.0, 1)

    async with _client(handler, limiter, feedbacks=override) as client:
        page = await client.list_items("review", is_answered=False, take=10)

    assert page.items == []
    assert len(seen) == 3
    assert client.stats.retries == 2
    assert limiter.acquired == [(FEEDBACKS, override, Priority.SYNC)] * 3


async def test_reads_give_up_after_the_policys_attempts() -> None:
    handler, seen = _scripted(httpx.Response(500, text="down"))

    async with _client(handler, RecordingLimiter()) as client:
        with pytest.raises(TransientError, match="gave up after 3 attempts") as caught:
            await client.list_items("review", is_answered=False, take=10)

    assert len(seen) == 3
    assert caught.value.status_code == 500


async def test_a_429_penalises_the_bucket_for_the_advertised_wait_then_retries() -> None:
    handler, seen = _scripted(httpx.Response(429, headers={"X-Ratelimit-Retry": "2"}), _page([]))
    limiter = RecordingLimiter()

    async with _client(handler, limiter) as client:
        await client.list_items("review", is_answered=False, take=10)

    assert limiter.penalties == [(FEEDBACKS, 2.0)]
    assert client.stats.rate_limited == 1
    assert len(seen) == 2


async def test_a_429_that_outlasts_the_policy_is_rate_limited() -> None:
    handler, _ = _scripted(httpx.Response(429, headers={"Retry-After": "4"}))

    async with _client(handler, RecordingLimiter()) as client:
        with pytest.raises(RateLimited) as caught:
            await client.list_items("review", is_answered=False, take=10)

    assert caught.value.retry_after == 4.0
    assert isinstance(caught.value, TransientError)  # callers that retry later still do


async def test_a_write_is_not_retried_once_it_may_have_landed() -> None:
    handler, seen = _scripted(httpx.Response(503), httpx.Response(204))

    async with _client(handler, RecordingLimiter()) as client:
        with pytest.raises(MaybeDelivered):
            await client.answer_question("q1", "Да")

    assert len(seen) == 1


async def test_auth_and_bad_requests_are_not_retried() -> None:
    for status, error in ((401, AuthError), (403, AuthError), (404, BadRequest)):
        handler, seen = _scripted(httpx.Response(status, text="nope"))
        async with _client(handler, RecordingLimiter()) as client:
            with pytest.raises(error) as caught:
                await client.list_items("review", is_answered=False, take=10)
        assert caught.value.status_code == status
        assert len(seen) == 1


async def test_a_chat_message_goes_to_the_reply_sign_the_mapping_stored() -> None:
    handler, seen = _scripted(httpx.Response(200, json={"result": {}}))

    async with _client(handler, RecordingLimiter()) as client:
        await client.send_chat_message({"reply_sign": "sign-1", "price": 10}, "Здравствуйте")

    assert seen[0].url.path == "/api/v1/seller/message"
    assert b"sign-1" in seen[0].content


# --- the token check ------------------------------------------------------------------------


async def test_a_working_token() -> None:
    handler, seen = _scripted(httpx.Response(200, json={"Status": "OK"}))

    result = await CONNECTOR.check_token("token", _env(handler))

    assert (result.outcome, result.message, result.status_code) == (TokenVerdict.OK, "ok", 200)
    assert seen[0].url.path == "/ping"
    assert seen[0].headers["Authorization"] == "token"


async def test_a_refused_token() -> None:
    handler, _ = _scripted(httpx.Response(401, text="token 'abc' is expired"))

    result = await CONNECTOR.check_token("abc", _env(handler))

    assert result.outcome is TokenVerdict.REJECTED
    assert result.message == "the marketplace rejected the token (HTTP status 401)"
    assert result.status_code == 401


async def test_the_ping_is_asked_once_whatever_the_answer() -> None:
    """Its limit is 3 calls per 30 s: no retry, no waiting out a 429."""
    for response, outcome, status, retry_after in (
        (httpx.Response(429), TokenVerdict.RATE_LIMITED, 429, 30.0),
        (httpx.Response(429, headers={"X-Ratelimit-Retry": "17"}), TokenVerdict.RATE_LIMITED,
         429, 17.0),
        (httpx.Response(503), TokenVerdict.UNREACHABLE, 503, None),
        (httpx.Response(200, text="<html>portal</html>"), TokenVerdict.UNREACHABLE, 200, None),
    ):  # fmt: skip
        handler, seen = _scripted(response)
        result = await CONNECTOR.check_token("token", _env(handler))
        assert (result.outcome, result.status_code) == (outcome, status)
        assert result.retry_after_seconds == retry_after
        assert len(seen) == 1


async def test_unreachable_messages_never_quote_the_marketplace() -> None:
    def timing_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    down = await CONNECTOR.check_token("token", _env(timing_out))
    broken = await CONNECTOR.check_token(
        "token", _env(lambda _: httpx.Response(502, text="secret detail"))
    )

    assert down.outcome is TokenVerdict.UNREACHABLE
    assert down.status_code is None
    assert down.message.startswith("the marketplace check failed: ")
    assert broken.message == "the marketplace check failed: HTTP status 502"


@pytest.mark.parametrize("token", ["", " padded", "токен", "line\nbreak"])
async def test_a_malformed_token_is_refused_without_a_call(token: str) -> None:
    handler, seen = _scripted(httpx.Response(200, json={"Status": "OK"}))

    result = await CONNECTOR.check_token(token, _env(handler))

    assert result.outcome is TokenVerdict.REJECTED
    assert result.message == "the token is malformed"
    assert seen == []


def test_a_token_check_client_takes_no_tokens() -> None:
    client = WildberriesClient(
        token="t", seller_id=None, limiter=None, feedbacks_url=URL, chat_url=URL,
        policy=EgressPolicy.from_settings(_settings()),
    )  # fmt: skip
    with pytest.raises(TypeError):
        client._bucket()
