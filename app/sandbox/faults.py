"""Fault injection: latency, random 5xx, bursts of 429, and deterministically malformed items."""

import math
import random
from typing import Any

from app.sandbox import corpus
from app.sandbox.config import FaultSettings
from app.sandbox.ids import mix64

REVIEW_FAULTS = (
    "missing_id",
    "missing_created_date",
    "wrong_type",
    "broken_date",
    "huge_text",
    "emoji",
)
EVENT_FAULTS = (
    "missing_event_id",
    "missing_add_timestamp",
    "wrong_type",
    "broken_date",
    "huge_text",
    "emoji",
)
BROKEN_DATE = "2024-13-45T99:00"
HUGE_TEXT_CHARS = 120_000  # > 100 KB in any encoding
_SERVER_ERRORS = (500, 502, 503)


class FaultState:
    """One settings object plus the counters and random stream it drives.

    Random 5xx and latency come from a stream seeded by `seed`; malformed-ness is a hash of
    (seed, channel key, index), so the same item is malformed the same way while the setting holds.
    """

    def __init__(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._rng = random.Random(settings.seed)  # noqa: S311 - reproducible faults
        self._seen = 0
        self._malformed_cut = settings.malformed_rate * 2.0**64

    @property
    def malformed_enabled(self) -> bool:
        return self.settings.malformed_rate > 0

    def latency_seconds(self) -> float:
        if self.settings.latency_ms is None:
            return 0.0
        low, high = self.settings.latency_ms
        return self._rng.uniform(low, high) / 1000

    def in_429_burst(self) -> bool:
        """After every `every` requests the next `length` get 429; counts this request."""
        burst = self.settings.burst_429
        self._seen += 1
        if burst is None:
            return False
        return (self._seen - 1) % (burst.every + burst.length) >= burst.every

    def server_error(self) -> int | None:
        if self.settings.error_rate and self._rng.random() < self.settings.error_rate:
            return self._rng.choice(_SERVER_ERRORS)
        return None

    def malformed_kind(self, channel_key: int, index: int, kinds: tuple[str, ...]) -> str | None:
        if not self._malformed_cut:
            return None
        h = mix64(mix64(channel_key ^ self.settings.seed) ^ index)
        if h >= self._malformed_cut:
            return None
        return kinds[mix64(h) % len(kinds)]


def _huge(text: str) -> str:
    unit = (text or "Очень длинный отзыв.") + " "
    return unit * math.ceil(HUGE_TEXT_CHARS / len(unit))


def _emoji(text: str) -> str:
    marks = corpus.EMOJI * 4
    return (
        marks
        + " "
        + " ".join(f"{word} {corpus.EMOJI[i % 8]}" for i, word in enumerate(text.split()))
        + marks
    )


def malform_item(item: dict[str, Any], kind: str, channel: str) -> None:
    """Corrupt a review or question in place."""
    if kind == "missing_id":
        item.pop("id", None)
    elif kind == "missing_created_date":
        item.pop("createdDate", None)
    elif kind == "wrong_type":
        if channel == "review":
            item["productValuation"] = "five"
        else:
            item["productDetails"] = {
                **item["productDetails"],
                "nmId": f"nm{item['productDetails']['nmId']}",
            }
    elif kind == "broken_date":
        item["createdDate"] = BROKEN_DATE
    elif kind == "huge_text":
        item["text"] = _huge(item["text"])
    elif kind == "emoji":
        item["text"] = _emoji(item["text"])


def malform_event(event: dict[str, Any], kind: str) -> None:
    """Corrupt a chat event in place."""
    message = event.get("message")
    if kind == "missing_event_id":
        event.pop("eventID", None)
    elif kind == "missing_add_timestamp":
        event.pop("addTimestamp", None)
    elif kind == "wrong_type":
        event["addTimestamp"] = str(event["addTimestamp"])
    elif kind == "broken_date":
        event["addTime"] = BROKEN_DATE
    elif kind == "huge_text" and message is not None:
        message["text"] = _huge(message["text"])
    elif kind == "emoji" and message is not None:
        message["text"] = _emoji(message["text"])
