"""Async Wildberries client for one marketplace account (docs/wb-api.md §0, §1, §2).

Every call first takes a token from the seller's Redis bucket, so all workers together stay
within the marketplace's limits. 429s penalise the shared bucket for the advertised retry time;
5xx, timeouts and maintenance windows are retried with capped exponential backoff and full
jitter; 401/403 raise AuthError and other 4xx BadRequest at once. Every request goes through the
outbound policy (purpose marketplace): a refused address is never called (`PolicyRefused`).
The token check (`GET /ping`) goes through the same call, once and outside the seller's bucket.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import httpx
import orjson

from app.connectors.base import (
    AuthError,
    BadRequest,
    CallStats,
    ConnectorError,
    EventsPage,
    ListChannel,
    ListPage,
    MaybeDelivered,
    PolicyRefused,
    RateLimited,
    RetryPolicy,
    TokenCheck,
    TokenVerdict,
    TransientError,
    WindowRead,
)
from app.connectors.wildberries.limits import CHAT, DEFAULT_LIMITS, FEEDBACKS
from app.core import egress
from app.core.backoff import full_jitter
from app.core.ratelimit import Limit, Priority, RateLimiter

logger = logging.getLogger(__name__)

REVIEWS_MAX_TAKE = 5000
REVIEWS_MAX_SKIP = 199_990
QUESTIONS_MAX_TAKE_PLUS_SKIP = 10_000
# Reading by date windows: the next window starts this many seconds before the newest item seen,
# so items sharing the boundary second are re-read (dedup by id) whether WB's bound is inclusive
# or not.
WINDOW_OVERLAP_SECONDS = 1
MAINTENANCE_MARKERS = ("временные ограничения", "Технический перерыв")
# The ping is limited to 3 calls per 30 s per host: asked once (no retry, no wait on a 429),
# within this long; a 429 without a retry header means the whole window.
PING = RetryPolicy(max_attempts=1, max_rate_limited=0, timeout=10.0)
PING_WINDOW_SECONDS = 30.0
# The longest Retry-After we honour (a broken header must not park a worker for hours).
MAX_RETRY_AFTER_SECONDS = 600.0


class WildberriesClient:
    def __init__(
        self,
        *,
        token: str,
        seller_id: int | None,
        limiter: RateLimiter | None,
        feedbacks_url: str,
        chat_url: str,
        policy: egress.EgressPolicy,
        limits: Mapping[str, Limit] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        """`seller_id` and `limiter` may be None only for a client that just checks its token."""
        self._seller_id = seller_id
        self._limiter = limiter
        self._limits = DEFAULT_LIMITS | dict(limits or {})
        self._feedbacks_url = feedbacks_url.rstrip("/")
        self._chat_url = chat_url.rstrip("/")
        self._retry = retry or RetryPolicy()
        timeout = self._retry.timeout
        self._http = httpx.AsyncClient(
            headers={"Authorization": token, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=policy.transport(egress.Purpose.MARKETPLACE, transport),
        )
        self.stats = CallStats()

    async def __aenter__(self) -> "WildberriesClient":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- token check (wb-api.md §0) ------------------------------------------------------------

    async def check_token(self) -> TokenCheck:
        """`GET /ping` on the feedbacks host: the token works and its category matches. Never
        raises for the marketplace's answer; the message never quotes the marketplace."""
        try:
            async with asyncio.timeout(PING.timeout):
                response = await self._call(
                    None, "GET", self._feedbacks_url + "/ping", {},
                    retry=PING, retry_after_default=PING_WINDOW_SECONDS,
                )  # fmt: skip
        except AuthError as exc:
            rejected = exc.status_code or 401
            return TokenCheck(
                TokenVerdict.REJECTED,
                f"the marketplace rejected the token ({egress.http_status(rejected)})",
                rejected,
            )
        except RateLimited as exc:
            return TokenCheck(
                TokenVerdict.RATE_LIMITED,
                "the marketplace's token check is rate limited; try again shortly",
                exc.status_code,
                exc.retry_after,
            )
        except (ConnectorError, TimeoutError) as exc:
            answered, why = _status_and_reason(exc)
            if answered is None:
                logger.warning("marketplace ping failed: %s", why)
            else:
                logger.warning("marketplace ping answered HTTP %s", answered)
            return TokenCheck(
                TokenVerdict.UNREACHABLE, f"the marketplace check failed: {why}", answered
            )
        if response.status_code == 200 and _says_ok(response):
            return TokenCheck(TokenVerdict.OK, "ok", 200)
        status = response.status_code
        logger.warning("marketplace ping answered HTTP %s", status)
        why = egress.http_status(status) if status != 200 else egress.MALFORMED
        return TokenCheck(TokenVerdict.UNREACHABLE, f"the marketplace check failed: {why}", status)

    # --- reviews and questions -------------------------------------------------------------

    async def list_items(
        self,
        channel: ListChannel,
        *,
        is_answered: bool,
        take: int,
        skip: int = 0,
        date_from: int | None = None,
        date_to: int | None = None,
        order: str = "dateAsc",
    ) -> ListPage:
        params: dict[str, Any] = {
            "isAnswered": "true" if is_answered else "false",
            "take": take,
            "skip": skip,
            "order": order,
        }
        if date_from is not None:
            params["dateFrom"] = date_from
        if date_to is not None:
            params["dateTo"] = date_to
        path = "/api/v1/feedbacks" if channel == "review" else "/api/v1/questions"
        data = await self._feedbacks_get(path, params)
        key = "feedbacks" if channel == "review" else "questions"
        items = data.get(key) if isinstance(data, dict) else None
        return ListPage(
            items=items if isinstance(items, list) else [],
            count_unanswered=_int_or_none(data, "countUnanswered"),
            count_archive=_int_or_none(data, "countArchive"),
        )

    async def count_items(
        self, channel: ListChannel, *, is_answered: bool, date_from: int, date_to: int
    ) -> int:
        """WB's count of one list's items created in [date_from, date_to] (Unix seconds)."""
        path = "/api/v1/feedbacks/count" if channel == "review" else "/api/v1/questions/count"
        params = {
            "isAnswered": "true" if is_answered else "false",
            "dateFrom": date_from,
            "dateTo": date_to,
        }
        data = await self._feedbacks_get(path, params)
        if not isinstance(data, int) or isinstance(data, bool):
            raise BadRequest(f"{path}: unexpected response")
        return data

    async def iter_items(
        self,
        channel: ListChannel,
        *,
        is_answered: bool,
        date_from: int | None = None,
        date_to: int | None = None,
    ) -> AsyncIterator[ListPage]:
        """Every item in [date_from, date_to] that WB's caps let us reach, oldest first.

        WB caps `skip` (reviews 199 990, questions take+skip 10 000), so the date window moves
        forward instead of skipping further. A full page that cannot move it (thousands of items
        within a second or two) is read second by second (`read_second`), and the read goes on
        after those seconds whatever they held: the last page of each carries how it went.
        """
        take = _take(channel)
        cursor = date_from
        while True:
            page = await self.list_items(
                channel, is_answered=is_answered, take=take, skip=0,
                date_from=cursor, date_to=date_to,
            )  # fmt: skip
            yield page
            if len(page.items) < take:
                return
            newest = newest_created_second(page.items)
            if newest is None:
                raise BadRequest(f"a full page of {channel}s without a readable createdDate")
            if cursor is None or newest - WINDOW_OVERLAP_SECONDS > cursor:
                cursor = newest - WINDOW_OVERLAP_SECONDS
                continue
            last = max(newest, cursor)
            shown = _ids_by_second(page.items)
            for second in range(cursor, last + 1):
                async for dense in self.read_second(
                    channel, is_answered=is_answered, second=second
                ):
                    if dense.window is not None and not dense.window.read and shown[second]:
                        # We rely on dateTo being inclusive (the sandbox's reading; WB does not
                        # say): fail loudly rather than skip a second we know holds items.
                        raise BadRequest(f"a one-second read of {channel}s missed items")
                    yield dense
            cursor = last + 1  # those seconds are read as far as WB lets anyone read them
            if date_to is not None and cursor > date_to:
                return

    async def read_second(
        self, channel: ListChannel, *, is_answered: bool, second: int
    ) -> AsyncIterator[ListPage]:
        """The items of one list created within one second: oldest first up to the skip cap,
        then newest first (`dateDesc`) until the two ends meet, so up to twice the cap.

        The last page carries `window`: how many distinct items were read and how many WB
        counts beyond them (`missing`, asked only when the two ends did not meet).
        """
        take = _take(channel)
        seen: set[str] = set()
        held: ListPage | None = None  # the last page waits to carry the window
        complete = False
        for order in ("dateAsc", "dateDesc"):
            skip = 0
            while not complete and _skip_allowed(channel, take, skip):
                page = await self.list_items(
                    channel, is_answered=is_answered, take=take, skip=skip,
                    date_from=second, date_to=second, order=order,
                )  # fmt: skip
                if held is not None:
                    yield held
                held = page
                ids = _item_ids(page.items)
                met = order == "dateDesc" and not ids.isdisjoint(seen)
                complete = len(page.items) < take or met
                seen |= ids
                skip += take
            if complete:
                break
        missing = 0
        if not complete:
            total = await self.count_items(
                channel, is_answered=is_answered, date_from=second, date_to=second
            )
            missing = max(0, total - len(seen))
        window = WindowRead(date_from=second, date_to=second, read=len(seen), missing=missing)
        assert held is not None  # the first request always runs
        yield held.model_copy(update={"window": window})

    # --- buyer chat ------------------------------------------------------------------------

    async def chats(self) -> list[Any]:
        result = await self._chat_get("/api/v1/seller/chats", {})
        return result if isinstance(result, list) else []

    async def events(self, next_ms: int | None, priority: Priority = Priority.SYNC) -> EventsPage:
        params = {"next": next_ms} if next_ms else {}
        result = await self._chat_get("/api/v1/seller/events", params, priority)
        if not isinstance(result, dict):
            raise TransientError("chat events: unexpected response shape")
        events = result.get("events")
        return EventsPage(
            events=events if isinstance(events, list) else [],
            next=_int_or_none(result, "next"),
            total=_int_or_none(result, "totalEvents") or 0,
        )

    async def iter_events(
        self, next_cursor: int | None, priority: Priority = Priority.SYNC
    ) -> AsyncIterator[EventsPage]:
        """Pages of events after `next_cursor` (Unix ms), until the marketplace has nothing
        newer."""
        next_ms = next_cursor
        while True:
            page = await self.events(next_ms, priority)
            yield page
            if page.total == 0 or not page.events or page.next in (None, next_ms):
                return
            next_ms = page.next

    # --- replies (product.md §5) ---------------------------------------------------------------
    # A send is one call: a timeout or 5xx may have landed, so it is never retried here (the
    # dispatcher checks the marketplace before trying again). Only a 429, which WB did not
    # process, is waited out and retried.

    async def answer_review(self, external_id: str, text: str, *, edit: bool = False) -> None:
        url = self._feedbacks_url + "/api/v1/feedbacks/answer"
        body = {"id": external_id, "text": text}
        await self._send(FEEDBACKS, "PATCH" if edit else "POST", url, json=body)

    async def answer_question(self, external_id: str, text: str) -> None:
        body = {"id": external_id, "answer": {"text": text}, "state": "wbRu"}
        await self._send(FEEDBACKS, "PATCH", self._feedbacks_url + "/api/v1/questions", json=body)

    async def send_chat_message(self, chat: Mapping[str, Any], text: str) -> None:
        """Into the chat whose interaction `extra` is `chat`: WB addresses it by its reply sign."""
        # multipart/form-data fields (no file parts): httpx writes (None, value) as a field.
        fields = {"replySign": (None, str(chat["reply_sign"])), "message": (None, text)}
        await self._send(CHAT, "POST", self._chat_url + "/api/v1/seller/message", files=fields)

    async def review_answer(self, external_id: str) -> str | None:
        """The answer text the review carries now (None: not answered)."""
        data = await self._feedbacks_get("/api/v1/feedback", {"id": external_id}, Priority.REPLY)
        return _answer_text(data)

    async def question_answer(self, external_id: str) -> str | None:
        data = await self._feedbacks_get("/api/v1/question", {"id": external_id}, Priority.REPLY)
        return _answer_text(data)

    async def seller_messages_since(self, chat_id: str, since_ms: int) -> list[str]:
        """Texts the seller's side sent into this chat since `since_ms`."""
        texts: list[str] = []
        async for page in self.iter_events(since_ms, Priority.REPLY):
            for event in page.events:
                if not isinstance(event, dict) or event.get("chatID") != chat_id:
                    continue
                message = event.get("message")
                if event.get("sender") != "client" and isinstance(message, dict):
                    texts.append(str(message.get("text") or ""))
        return texts

    async def _send(self, category: str, method: str, url: str, **body: Any) -> None:
        await self._call(category, method, url, {}, Priority.REPLY, writes=True, **body)

    # --- transport -------------------------------------------------------------------------

    async def _feedbacks_get(
        self, path: str, params: dict[str, Any], priority: Priority = Priority.SYNC
    ) -> Any:
        response = await self._call(FEEDBACKS, "GET", self._feedbacks_url + path, params, priority)
        body = _json(response)
        if not isinstance(body, dict) or body.get("error"):
            text = body.get("errorText") if isinstance(body, dict) else None
            raise BadRequest(f"{path}: {text or 'unexpected response'}")
        return body.get("data")

    async def _chat_get(
        self, path: str, params: dict[str, Any], priority: Priority = Priority.SYNC
    ) -> Any:
        response = await self._call(CHAT, "GET", self._chat_url + path, params, priority)
        body = _json(response)
        if not isinstance(body, dict):
            raise TransientError(f"{path}: unexpected response shape")
        return body.get("result")

    async def _call(
        self,
        category: str | None,
        method: str,
        url: str,
        params: dict[str, Any],
        priority: Priority = Priority.SYNC,
        *,
        writes: bool = False,
        retry: RetryPolicy | None = None,
        retry_after_default: float = 1.0,
        **body: Any,
    ) -> httpx.Response:
        """One call under the retry policy; `category` None: outside the seller's bucket (the
        token check). A write is never sent twice once it may have landed (MaybeDelivered)."""
        policy = retry or self._retry
        failures = rate_limited = 0
        while True:
            if category is not None:
                await self._acquire(category, priority)
            self.stats.requests += 1
            try:
                response = await self._http.request(method, url, params=params, **body)
            except (egress.Refused, httpx.InvalidURL) as exc:
                why = egress.failure(exc)
                raise PolicyRefused(f"{why} on {method} {url}", reason=why) from None
            except httpx.TransportError as exc:  # timeouts, refused and reset connections
                why, status = egress.failure(exc), None
                failure = f"{why} on {method} {url}"
            else:
                status = response.status_code
                if status < 300:
                    return response
                why = egress.http_status(status)
                if status in (401, 403):
                    raise AuthError(
                        f"{status} from the marketplace: {_detail(response)}", status, reason=why
                    )
                if status == 429 and not _is_maintenance(response):
                    rate_limited += 1
                    self.stats.rate_limited += 1
                    wait = retry_after_seconds(response, default=retry_after_default)
                    if rate_limited > policy.max_rate_limited:
                        raise RateLimited(f"still rate limited after {rate_limited} tries", wait)
                    if category is not None:
                        await self._penalize(category, wait)
                    continue
                if status < 500 and not _is_maintenance(response):
                    raise BadRequest(
                        f"{status} on {method} {url}: {_detail(response)}", status, reason=why
                    )
                failure = f"{status} on {method} {url}: {_detail(response)}"
            failures += 1
            if writes:
                raise MaybeDelivered(f"may have landed: {failure}", status, reason=why)
            if failures >= policy.max_attempts:
                raise TransientError(
                    f"gave up after {failures} attempts: {failure}", status, reason=why
                )
            self.stats.retries += 1
            await asyncio.sleep(full_jitter(failures, policy.backoff_base, policy.backoff_cap))

    async def _acquire(self, category: str, priority: Priority) -> None:
        limiter, seller_id = self._bucket()
        limit = self._limits.get(category)
        await limiter.acquire(seller_id, category, limit=limit, priority=priority)

    async def _penalize(self, category: str, seconds: float) -> None:
        limiter, seller_id = self._bucket()
        await limiter.penalize(seller_id, category, seconds)

    def _bucket(self) -> tuple[RateLimiter, int]:
        if self._limiter is None or self._seller_id is None:
            raise TypeError("a token-check client makes no rate-limited calls")
        return self._limiter, self._seller_id


def newest_created_second(items: list[Any]) -> int | None:
    """The newest parseable `createdDate` of raw items, in Unix seconds (malformed ones skipped)."""
    newest: int | None = None
    for item in items:
        raw = item.get("createdDate") if isinstance(item, dict) else None
        if not isinstance(raw, str):
            continue
        try:
            second = int(datetime.fromisoformat(raw).timestamp())
        except ValueError:
            continue
        newest = second if newest is None else max(newest, second)
    return newest


def _take(channel: ListChannel) -> int:
    return REVIEWS_MAX_TAKE if channel == "review" else QUESTIONS_MAX_TAKE_PLUS_SKIP // 2


def _ids_by_second(items: list[Any]) -> defaultdict[int, set[str]]:
    """Ids of raw items by their `createdDate` second (items without either are left out)."""
    found: defaultdict[int, set[str]] = defaultdict(set)
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        second = newest_created_second([item])
        if second is not None:
            found[second].add(item["id"])
    return found


def _item_ids(items: list[Any]) -> set[str]:
    return {
        item["id"] for item in items if isinstance(item, dict) and isinstance(item.get("id"), str)
    }


def _skip_allowed(channel: ListChannel, take: int, skip: int) -> bool:
    if channel == "review":
        return skip <= REVIEWS_MAX_SKIP
    return take + skip <= QUESTIONS_MAX_TAKE_PLUS_SKIP


def _json(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise TransientError(f"invalid JSON from {response.request.url.path}") from exc


def _answer_text(item: Any) -> str | None:
    answer = item.get("answer") if isinstance(item, dict) else None
    text = answer.get("text") if isinstance(answer, dict) else None
    return text if isinstance(text, str) and text else None


def _int_or_none(data: Any, key: str) -> int | None:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _detail(response: httpx.Response) -> str:
    return response.text[:300]


def _is_maintenance(response: httpx.Response) -> bool:
    return response.status_code in (400, 429) and any(
        marker in response.text for marker in MAINTENANCE_MARKERS
    )


def retry_after_seconds(response: httpx.Response, *, default: float) -> float:
    """How long WB asks us to wait (X-Ratelimit-Retry, else Retry-After), capped; `default`
    without either."""
    for header in ("X-Ratelimit-Retry", "Retry-After"):
        try:
            return max(0.0, min(float(response.headers[header]), MAX_RETRY_AFTER_SECONDS))
        except (KeyError, ValueError):
            continue
    return default


def _says_ok(response: httpx.Response) -> bool:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return False
    return isinstance(body, dict) and body.get("Status") == "OK"


def _status_and_reason(exc: ConnectorError | TimeoutError) -> tuple[int | None, str]:
    if isinstance(exc, ConnectorError):
        return exc.status_code, exc.reason
    return None, egress.failure(exc)
