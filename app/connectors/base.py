"""What every marketplace connector is to the rest of the app: the `Connector` (one per marketplace,
found by name in `app.connectors.registry`), the `Marketplace` client it opens for one account,
the errors both raise, and the marketplace-neutral shapes the domains consume.

Callers branch on these, never on HTTP details or a marketplace's payloads: a connector's
package (`app/connectors/<name>/`) keeps its limits, time formats, error shapes, retry headers
and payload mapping to itself.
"""

import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel

from app.core.config import Settings
from app.core.egress import EgressPolicy
from app.core.ratelimit import Limit, Priority, RateLimiter

# The kinds of conversation we keep, whatever the marketplace (the one definition in app/).
Channel = Literal["review", "question", "chat"]
# The channels read as paged lists (a chat is read as a stream of events).
ListChannel = Literal["review", "question"]


# --- errors ------------------------------------------------------------------------------


class ConnectorError(Exception):
    """A marketplace call failed. `status_code`: the HTTP status, when there was one; `reason`:
    what happened in a few words, safe to show (never the token, never the marketplace's text)."""

    def __init__(
        self, message: str, status_code: int | None = None, *, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.reason = reason or message


class AuthError(ConnectorError):
    """The token is wrong, expired or lacks the category (401/403). Retrying will not help."""


class BadRequest(ConnectorError):
    """The marketplace refused the request itself (400/404/422). Retrying will not help."""


class PolicyRefused(ConnectorError):
    """Our outbound request policy refused the marketplace's address (app/core/egress.py):
    nothing was sent. A configuration error; retrying will not help until it is fixed."""


class TransientError(ConnectorError):
    """5xx, timeouts, 429s or maintenance that outlasted our bounded retries."""


class RateLimited(TransientError):
    """The marketplace kept answering 429 past the retry policy's bound; `retry_after`: the
    seconds it asked us to wait."""

    def __init__(self, message: str, retry_after: float, status_code: int | None = 429) -> None:
        super().__init__(message, status_code)
        self.retry_after = retry_after


class MaybeDelivered(TransientError):
    """A write failed after it was sent (a timeout, a dropped connection, a 5xx): the marketplace
    may have applied it. Check before sending it again."""


# --- how calls are made ---------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """The one retry policy of every marketplace call: reads retry 5xx, timeouts and maintenance
    up to `max_attempts` calls with full-jitter backoff (`app.core.backoff`); a 429 is waited out
    for as long as the marketplace asks (Retry-After), `max_rate_limited` times; writes are never
    retried after they may have landed (`MaybeDelivered`). `timeout`: per request (seconds)."""

    max_attempts: int = 6
    max_rate_limited: int = 50
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    timeout: float = 30.0


@dataclass(frozen=True)
class Environment:
    """What a connector needs from the app: the app's settings, the outbound policy, a transport
    (None in production; tests pass the in-process sandbox) and `base_url`: every endpoint of the
    marketplace at this one address instead of those of the connector's own settings (None in
    production; tests and benchmarks: the sandbox's address)."""

    settings: Settings
    policy: EgressPolicy
    transport: httpx.AsyncBaseTransport | None = None
    base_url: str | None = None

    @classmethod
    def of(
        cls,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
        base_url: str | None = None,
    ) -> "Environment":
        """The environment these settings make (their outbound policy)."""
        return cls(settings, EgressPolicy.from_settings(settings), transport, base_url)


@dataclass
class CallStats:
    requests: int = 0
    rate_limited: int = 0
    retries: int = 0


# --- token checks --------------------------------------------------------------------------


class TokenVerdict(enum.StrEnum):
    OK = "ok"
    REJECTED = "rejected"  # 401/403: the token is wrong, expired or lacks the category
    RATE_LIMITED = "rate_limited"  # the check's own limit
    UNREACHABLE = "unreachable"  # network error, timeout, 5xx or an answer we do not understand


@dataclass(frozen=True)
class TokenCheck:
    outcome: TokenVerdict
    # What happened, safe to show and store: never the token, never the marketplace's detail
    # text (it may quote parts of the token).
    message: str
    status_code: int | None = None
    retry_after_seconds: float | None = None


# --- what reads return ----------------------------------------------------------------------


class WindowRead(BaseModel):
    """How reading one dense window (one second, both ends inclusive) went: `read` distinct
    items; `missing` the ones the marketplace's caps kept out of reach (0: complete)."""

    date_from: int  # Unix seconds
    date_to: int
    read: int
    missing: int


class ListPage(BaseModel):
    """A reviews or questions page: raw items (the connector's mapping reads them) plus the
    counters the marketplace sends alongside; the last page of a dense window carries how
    reading it went (`window`)."""

    items: list[Any]
    count_unanswered: int | None = None
    count_archive: int | None = None
    window: WindowRead | None = None


class EventsPage(BaseModel):
    """A page of chat events (raw; the connector's mapping reads them) and the cursor after it."""

    events: list[Any]
    next: int | None
    total: int


@dataclass(frozen=True)
class InteractionItem:
    """One review, question or chat as the marketplace shows it, before we classify it.

    `row`: the interaction's columns the marketplace determines (identity, texts, product,
    status, times, `extra`); the sync adds intent, priority and SLA from `texts` (the buyer's
    words, in the order the classifier reads them) and `clock_from` (when the response clock
    starts; None: nothing awaits a response)."""

    row: dict[str, Any]
    texts: tuple[str, ...]
    clock_from: datetime | None


@dataclass(frozen=True)
class Invalid:
    """A raw item the mapping could not read: recorded as a sync error, then skipped."""

    raw: Any
    error: Exception
    external_id: str | None


@dataclass
class ItemBatch:
    items: list[InteractionItem] = field(default_factory=list)
    invalid: list[Invalid] = field(default_factory=list)


@dataclass(frozen=True)
class ChatThread:
    """One chat's new events of a page: the chat as they leave it, and its new messages
    (`chat_messages` rows without `interaction_id`), oldest first."""

    chat_id: str
    item: InteractionItem
    messages: list[dict[str, Any]]


@dataclass
class ChatBatch:
    threads: list[ChatThread] = field(default_factory=list)
    invalid: list[Invalid] = field(default_factory=list)


@dataclass
class ChatDirectory:
    """The chats' metadata (reply addresses, names, product), by chat id; opaque to callers."""

    chats: dict[str, Any] = field(default_factory=dict)
    invalid: list[Invalid] = field(default_factory=list)


# --- the interfaces -------------------------------------------------------------------------


class Marketplace(Protocol):
    """A client for one marketplace account: what sync, dispatch and token checks call."""

    stats: CallStats

    async def __aenter__(self) -> "Marketplace": ...

    async def __aexit__(self, *_: object) -> None: ...

    async def aclose(self) -> None: ...

    async def check_token(self) -> TokenCheck:
        """Whether the marketplace accepts the token; never raises for its answer."""
        ...

    # reviews and questions
    def iter_items(
        self,
        channel: ListChannel,
        *,
        is_answered: bool,
        date_from: int | None = None,
        date_to: int | None = None,
    ) -> AsyncIterator[ListPage]:
        """Every item created in [date_from, date_to] (Unix seconds), oldest first."""
        ...

    def read_second(
        self, channel: ListChannel, *, is_answered: bool, second: int
    ) -> AsyncIterator[ListPage]:
        """The items created within one second; the last page carries `window`."""
        ...

    # buyer chat
    async def chats(self) -> list[Any]: ...

    def iter_events(
        self, next_cursor: int | None, priority: Priority = Priority.SYNC
    ) -> AsyncIterator[EventsPage]: ...

    # replies: one call each, never retried once it may have landed (MaybeDelivered)
    async def answer_review(self, external_id: str, text: str, *, edit: bool = False) -> None: ...

    async def answer_question(self, external_id: str, text: str) -> None: ...

    async def send_chat_message(self, chat: Mapping[str, Any], text: str) -> None:
        """Into the chat whose stored interaction `extra` is `chat` (what the mapping put there
        to reply with)."""
        ...

    # what is there now (a reply that may have landed is looked for before sending again)
    async def review_answer(self, external_id: str) -> str | None: ...

    async def question_answer(self, external_id: str) -> str | None: ...

    async def seller_messages_since(self, chat_id: str, since_ms: int) -> list[str]: ...


class Connector(Protocol):
    """One marketplace: its name, its limits, how to open a client and how to read its items."""

    name: str  # the `marketplace` value of accounts and interactions
    # Its display name: in messages ("no active <title> account is connected") and in the
    # drafts' customer-facing text ("личный кабинет <title>").
    title: str
    # How a text may name it, as lower-case regular expressions, the title's spelling included
    # (the guardrails spot money moved "в обход" it).
    aliases: tuple[str, ...]
    source: str  # the `source` value of the interactions it reads (demo items have their own)
    default_limits: Mapping[str, Limit]  # our limiter's buckets per API group

    def endpoints(self) -> Mapping[str, str]:
        """The marketplace's base URLs as configured, by the environment variable that sets each
        (read with the connector's own settings, from the environment and `.env`): what the
        draft provider's allow-list may not name, and what `make run` points at its sandbox."""
        ...

    def connect(
        self,
        token: str,
        *,
        seller_id: int,
        limiter: RateLimiter,
        env: Environment,
        limits: Mapping[str, Limit] | None = None,
        retry: RetryPolicy | None = None,
    ) -> Marketplace:
        """A client for one account; `limits` override `default_limits` per group."""
        ...

    async def check_token(self, token: str, env: Environment) -> TokenCheck:
        """Ask the marketplace whether `token` works (before it is stored)."""
        ...

    # mapping: raw payloads → neutral items (pure; never classifies)
    def item_ids(self, raws: Sequence[Any]) -> list[str]:
        """External ids of raw list items, before validation."""
        ...

    def list_items(
        self, channel: ListChannel, raws: Sequence[Any], seller_id: int
    ) -> ItemBatch: ...

    def chat_directory(self, raws: Sequence[Any]) -> ChatDirectory: ...

    def chat_threads(
        self, raws: Sequence[Any], directory: ChatDirectory, seller_id: int
    ) -> ChatBatch:
        """A page of raw events as threads: grouped by chat in order of first appearance,
        events in time order."""
        ...
