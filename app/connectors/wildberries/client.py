"""Async Wildberries client for one marketplace account (docs/wb-api.md §1, §2).

Every call first takes a token from the seller's Redis bucket, so all workers together stay
within the marketplace's limits. 429s penalise the shared bucket for the advertised retry time;
5xx, timeouts and maintenance windows are retried with capped exponential backoff and full
jitter; 401/403 raise AuthError and other 4xx BadRequest at once. Every request goes through the
outbound policy (purpose marketplace): a refused address is never called (`PolicyRefused`).
"""

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx
import orjson

from app.connectors.base import (
    AuthError,
    BadRequest,
    MaybeDelivered,
    PolicyRefused,
    TransientError,
)
from app.connectors.wildberries.schemas import EventsPage, ListPage, WindowRead
from app.core import egress
from app.core.ratelimit import CHAT, FEEDBACKS, Limit, Priority, RateLimiter

ListChannel = Literal["review", "question"]

REVIEWS_MAX_TAKE = 5000
REVIEWS_MAX_SKIP = 199_990
QUESTIONS_MAX_TAKE_PLUS_SKIP = 10_000
# Reading by date windows: the next window starts this many seconds before the newest item seen,
# so items sharing the boundary second are re-read (dedup by id) whether WB's bound is inclusive
# or not.
WINDOW_OVERLAP_SECONDS = 1
MAINTENANCE_MARKERS = ("временные ограничения", "Технический перерыв")


@dataclass
class CallStats:
    requests: int = 0
    rate_limited: int = 0
    retries: int = 0


class WildberriesClient:
    def __init__(
        self,
        *,
        token: str,
        seller_id: int,
        limiter: RateLimiter,
        feedbacks_url: str,
        chat_url: str,
        policy: egress.EgressPolicy,
        limits: Mapping[str, Limit] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        max_attempts: int = 6,
        max_rate_limited: int = 50,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
    ) -> None:
        self._seller_id = seller_id
        self._limiter = limiter
        self._limits = dict(limits or {})
        self._feedbacks_url = feedbacks_url.rstrip("/")
        self._chat_url = chat_url.rstrip("/")
        self._max_attempts = max_attempts
        self._max_rate_limited = max_rate_limited
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
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
        self, next_ms: int | None, priority: Priority = Priority.SYNC
    ) -> AsyncIterator[EventsPage]:
        """Pages of events after `next_ms`, until the marketplace has nothing newer."""
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

    async def send_chat_message(self, reply_sign: str, text: str) -> None:
        # multipart/form-data fields (no file parts): httpx writes (None, value) as a field.
        fields = {"replySign": (None, reply_sign), "message": (None, text)}
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
        await self._call(category, method, url, {}, Priority.REPLY, retry_failures=False, **body)

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
        category: str,
        method: str,
        url: str,
        params: dict[str, Any],
        priority: Priority = Priority.SYNC,
        *,
        retry_failures: bool = True,
        **body: Any,
    ) -> httpx.Response:
        failures = rate_limited = 0
        while True:
            await self._limiter.acquire(
                self._seller_id, category, limit=self._limits.get(category), priority=priority
            )
            self.stats.requests += 1
            try:
                response = await self._http.request(method, url, params=params, **body)
            except egress.Refused:
                raise PolicyRefused(f"{egress.REFUSED} on {method} {url}") from None
            except httpx.TransportError as exc:  # timeouts, refused and reset connections
                failure = f"{egress.failure(exc)} on {method} {url}"
            else:
                status = response.status_code
                if status < 300:
                    return response
                if status in (401, 403):
                    raise AuthError(f"{status} from the marketplace: {_detail(response)}", status)
                if status == 429 and not _is_maintenance(response):
                    rate_limited += 1
                    self.stats.rate_limited += 1
                    if rate_limited > self._max_rate_limited:
                        raise TransientError(f"still rate limited after {rate_limited} tries")
                    await self._limiter.penalize(
                        self._seller_id, category, _retry_seconds(response)
                    )
                    continue
                if status < 500 and not _is_maintenance(response):
                    raise BadRequest(f"{status} on {method} {url}: {_detail(response)}")
                failure = f"{status} on {method} {url}: {_detail(response)}"
            failures += 1
            if not retry_failures:
                raise MaybeDelivered(f"may have landed: {failure}")
            if failures >= self._max_attempts:
                raise TransientError(f"gave up after {failures} attempts: {failure}")
            self.stats.retries += 1
            await asyncio.sleep(self._backoff(failures))

    def _backoff(self, failures: int) -> float:
        """Full jitter: uniform in [0, min(cap, base × 2^n)]."""
        ceiling = min(self._backoff_cap, self._backoff_base * 2**failures)
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography


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


def _retry_seconds(response: httpx.Response) -> float:
    for header in ("X-Ratelimit-Retry", "Retry-After"):
        try:
            return max(0.0, min(float(response.headers[header]), 600.0))
        except (KeyError, ValueError):
            continue
    return 1.0
