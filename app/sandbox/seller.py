"""One sandbox seller: its generated history, what the connector changed, and its own settings."""

import bisect
import hashlib
import hmac
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.sandbox import generator
from app.sandbox.clock import DAY
from app.sandbox.config import GrowthRates, RateLimits, SellerSpec
from app.sandbox.faults import FaultState
from app.sandbox.generator import Catalog, build_catalog
from app.sandbox.ids import derive, draws, make_token, make_uuid, unit
from app.sandbox.ratelimit import RequestLog
from app.sandbox.store import FOLLOWUP, VIEWED_AFTER, Answer, Chats, Feed, seed_chats, seed_feed

CHANNELS = ("review", "question", "chat")
MAX_GROWTH_PER_TICK = 100_000  # a clock jumped by a year must not stall the process


@dataclass
class Growth:
    """Items added per minute of sandbox time since `anchor`."""

    per_minute: dict[str, float]
    anchor: float
    added: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANNELS, 0))

    def due(self, channel: str, now: float) -> int:
        rate = self.per_minute.get(channel, 0.0)
        if rate <= 0:
            return 0
        return max(0, int((now - self.anchor) * rate / 60) - self.added[channel])


def _weighted_product(catalog: Catalog, key: int, index: int) -> int:
    """A product for a new item: popular products get more feedback."""
    point = unit(draws(key ^ 0x9E3, index)) * catalog.cum_weights[-1]
    return bisect.bisect_left(catalog.cum_weights, point)


def _catalog_size(spec: SellerSpec) -> int:
    if spec.products is not None:
        return spec.products
    return min(500, max(50, (spec.reviews + spec.questions) // 200))


class Seller:
    def __init__(self, spec: SellerSpec, secret: bytes, now: float, log_capacity: int) -> None:
        self.spec = spec
        self.name = spec.name
        # Identity depends on the name only, so a restarted sandbox hands out the same token.
        self.id = make_uuid(derive("seller", spec.name))
        self.oid = 1_000_000 + derive("oid", spec.name) % 9_000_000
        self.token = make_token(secret, self.id, self.oid)
        self.key = derive("data", spec.seed, spec.name)
        self.created_at = now
        self.history_start = now - spec.history_days * DAY
        self.viewed_before = now - VIEWED_AFTER
        self.moderation_seconds = spec.moderation_seconds
        self.catalog = build_catalog(self.key, _catalog_size(spec))
        ratio = spec.answered_ratio
        self.reviews = self._seed_feed("review", spec.reviews, ratio.review, now)
        self.questions = self._seed_feed("question", spec.questions, ratio.question, now)
        chat_secret = hmac.new(secret, self.id.encode(), hashlib.sha256).digest()
        self.chats: Chats = seed_chats(
            derive(self.key, "chat"),
            chat_secret,
            self.catalog,
            spec.chats,
            self.history_start,
            now,
            spec.messages_per_chat,
        )
        self.deliveries: dict[str, Counter[str]] = {c: Counter() for c in CHANNELS}
        self.log = RequestLog(log_capacity)
        self.rate_limits: RateLimits | None = None  # None: the global limits apply
        self.faults: FaultState | None = None  # None: the global faults apply
        self.growth = Growth(spec.new_items_per_minute.model_dump(), now)
        self.seeded_events = self.chats.event_count  # what comes after is kept in a state file
        self.revoked = False  # the seller withdrew the token: every call answers 401

    def _seed_feed(self, channel: str, count: int, ratio: float, now: float) -> Feed:
        key = derive(self.key, channel)
        return seed_feed(channel, key, self.catalog, count, self.history_start, now, ratio)

    def feed(self, channel: str) -> Feed:
        return self.reviews if channel == "review" else self.questions

    def tick(self, now: float) -> None:
        """Bring the seller up to `now`: items due from growth, answers through moderation."""
        for channel in CHANNELS:
            due = self.growth.due(channel, now)
            if due:
                self.growth.added[channel] += due
                self.add_items(channel, min(due, MAX_GROWTH_PER_TICK), now)
        self.reviews.settle(now)
        self.questions.settle(now)

    def set_growth(self, rates: GrowthRates, now: float) -> None:
        self.growth = Growth(rates.model_dump(), now)

    # --- new items --------------------------------------------------------------------------------

    def add_items(self, channel: str, count: int, now: float, existing: bool = False) -> list[str]:
        """Append `count` items created now; their external ids (chats: chat or event ids)."""
        if channel == "chat":
            return self._add_chat_messages(count, now) if existing else self._add_chats(count, now)
        feed = self.feed(channel)
        return [feed.external_id(feed.append(now, self._product_for(feed))) for _ in range(count)]

    def _add_chats(self, count: int, now: float) -> list[str]:
        chats = self.chats
        return [chats.chat_id(chats.open_chat(self._product_for(chats), now)) for _ in range(count)]

    def _product_for(self, items: Feed | Chats) -> int:
        """The product of the next item of `items`."""
        return _weighted_product(self.catalog, items.key, len(items))

    def _add_chat_messages(self, count: int, now: float) -> list[str]:
        """Buyers write again in existing chats (a new chat when there is none yet)."""
        chats = self.chats
        if not len(chats):
            return self._add_chats(count, now)
        ids = []
        for _ in range(count):
            chat = draws(chats.key ^ 0xC4A7, chats.event_count)() % len(chats)
            ids.append(chats.event_id(chats.add_event(int(now * 1000), chat, FOLLOWUP)))
        return ids

    # --- answers of the seeded history ------------------------------------------------------------

    def seeded_sent_at(self, channel: str, index: int) -> float:
        feed = self.feed(channel)
        return min(feed.times[index] + generator.answer_delay(feed.key, index), self.created_at)

    def seeded_answer(self, channel: str, index: int) -> Answer:
        """The answer a seeded answered item came with, as if it had been sent through the API."""
        feed = self.feed(channel)
        created = feed.times[index]
        sent = self.seeded_sent_at(channel, index)
        product = feed.products[index]
        if channel == "question":
            text = generator.question_answer(self.catalog, feed.key, index, product)
        else:
            item = generator.review(self.catalog, feed.key, index, "", created, product)
            brand = self.catalog.products[product].brand
            rating, name = item["productValuation"], item["userName"]
            text = generator.review_answer(feed.key, index, rating, name, brand)
        return Answer(text, sent, sent)

    # --- admin views ------------------------------------------------------------------------------

    def counts(self, now: float) -> dict[str, Any]:
        feeds = {
            channel: {
                "total": len(feed),
                "answered": feed.count(True),
                "unanswered": feed.count(False),
                "in_moderation": feed.pending_count(now),
            }
            for channel, feed in (("review", self.reviews), ("question", self.questions))
        }
        return feeds | {"chat": {"total": len(self.chats), "events": self.chats.event_count}}

    def settings(self) -> dict[str, Any]:
        return {
            "seed": self.spec.seed,
            "history_days": self.spec.history_days,
            "messages_per_chat": self.spec.messages_per_chat,
            "answered_ratio": self.spec.answered_ratio.model_dump(),
            "moderation_seconds": self.moderation_seconds,
            "new_items_per_minute": self.growth.per_minute,
            "products": len(self.catalog.products),
        }
