"""Per-seller state kept compact: creation times, answered flags and product indexes in arrays,
plus a dict of what changed (answers sent, states). Item contents are regenerated on demand."""

from __future__ import annotations

import bisect
import heapq
import random
from array import array
from dataclasses import dataclass

from app.sandbox import generator
from app.sandbox.clock import DAY
from app.sandbox.generator import Catalog, ChatScript
from app.sandbox.ids import decode_item_id, decode_sign, encode_item_id, encode_sign, make_uuid

EDIT_WINDOW = 60 * DAY  # an answer can be edited once, within 60 days of sending
VIEWED_AFTER = 2 * DAY  # seeded unanswered items older than this have been viewed by the seller
_YES, _NO = b"\x01", b"\x00"


@dataclass
class Answer:
    text: str
    sent_at: float
    visible_at: float  # when moderation is over
    edits: int = 0
    previous: str | None = None  # the text still shown while an edit is moderated
    hidden: bool = False  # a question the seller rejected (state "none")
    rejected: bool = False  # a review answer moderation turns down


def _turned_down(text: str) -> bool:
    """WB moderation rejects answers with links; everything else passes."""
    lowered = text.lower()
    return "http://" in lowered or "https://" in lowered or "www." in lowered


class Feed:
    """Reviews or questions of one seller. Index i is the i-th item by creation time."""

    def __init__(
        self, channel: str, key: int, times: array[float], answered: bytearray, products: array[int]
    ) -> None:
        self.channel = channel
        self.key = key
        self.times = times
        self.answered = answered
        self.products = products
        self.answers: dict[int, Answer] = {}
        self.viewed: set[int] = set()
        self._pending: list[tuple[float, int]] = []  # (visible_at, index) heap
        self._by_product: dict[int, array[int]] | None = None

    def __len__(self) -> int:
        return len(self.times)

    def external_id(self, index: int) -> str:
        return encode_item_id(self.key, index)

    def index_of(self, external_id: str) -> int | None:
        index = decode_item_id(self.key, external_id)
        return index if index is not None and index < len(self.times) else None

    def append(self, ts: float, product: int) -> int:
        if self.times:
            ts = max(ts, self.times[-1])  # keep the arrays sorted by time
        self.times.append(ts)
        self.answered.append(0)
        self.products.append(product)
        if self._by_product is not None:
            self._by_product.setdefault(product, array("I")).append(len(self.times) - 1)
        return len(self.times) - 1

    def window(self, date_from: int | None, date_to: int | None) -> tuple[int, int]:
        """Index range of items created in [date_from, date_to], both inclusive Unix seconds."""
        lo = 0 if date_from is None else bisect.bisect_left(self.times, date_from)
        hi = len(self.times) if date_to is None else bisect.bisect_left(self.times, date_to + 1)
        return lo, max(lo, hi)

    def count(self, answered: bool | None, lo: int = 0, hi: int | None = None) -> int:
        hi = len(self.times) if hi is None else hi
        if answered is None:
            return hi - lo
        return self.answered.count(_YES if answered else _NO, lo, hi)

    def select(
        self,
        answered: bool,
        window: tuple[int, int],
        product: int | None,
        desc: bool,
        skip: int,
        take: int,
    ) -> list[int]:
        lo, hi = window
        if product is not None:
            return self._select_product(answered, lo, hi, product, desc, skip, take)
        needle = _YES if answered else _NO
        total = self.answered.count(needle, lo, hi)
        if skip >= total:
            return []
        if desc:
            start = _kth_match(self.answered, needle, lo, hi, total - 1 - skip)
            return _collect(self.answered, needle, lo, start + 1, take, desc=True)
        start = _kth_match(self.answered, needle, lo, hi, skip)
        return _collect(self.answered, needle, start, hi, take, desc=False)

    def _select_product(
        self, answered: bool, lo: int, hi: int, product: int, desc: bool, skip: int, take: int
    ) -> list[int]:
        if self._by_product is None:
            by: dict[int, array[int]] = {}
            for i, p in enumerate(self.products):
                by.setdefault(p, array("I")).append(i)
            self._by_product = by
        indexes = self._by_product.get(product, array("I"))
        flag = int(answered)
        a, b = bisect.bisect_left(indexes, lo), bisect.bisect_left(indexes, hi)
        matching = [i for i in indexes[a:b] if self.answered[i] == flag]
        if desc:
            matching.reverse()
        return matching[skip : skip + take]

    # --- answers ----------------------------------------------------------------------------------

    def settle(self, now: float) -> None:
        """Finish the moderation of every answer whose time has come."""
        while self._pending and self._pending[0][0] <= now:
            _, index = heapq.heappop(self._pending)
            answer = self.answers.get(index)
            if answer is None or answer.visible_at > now:
                continue  # superseded by a later edit, which has its own heap entry
            answer.previous = None
            if not answer.rejected:
                self.answered[index] = 1

    def has_answer(self, index: int) -> bool:
        """Answered, or an answer is being moderated (a turned-down one does not count)."""
        answer = self.answers.get(index)
        return bool(self.answered[index]) or (answer is not None and not answer.rejected)

    def answer(self, index: int, text: str, now: float, moderation: float) -> bool:
        if self.has_answer(index):
            return False
        rejected = self.channel == "review" and _turned_down(text)
        self.answers[index] = Answer(text, now, now + moderation, rejected=rejected)
        heapq.heappush(self._pending, (now + moderation, index))
        return True

    def edit(self, index: int, text: str, now: float, moderation: float, seeded: Answer) -> bool:
        """Replace a published answer, once and within 60 days; moderated again."""
        current = self.answers.get(index, seeded)
        if (
            not self.answered[index]
            or current.hidden
            or current.visible_at > now
            or current.edits
            or now - current.sent_at > EDIT_WINDOW
        ):
            return False
        self.answers[index] = Answer(
            text, current.sent_at, now + moderation, edits=current.edits + 1, previous=current.text
        )
        heapq.heappush(self._pending, (now + moderation, index))
        return True

    def hide(self, index: int, text: str, now: float) -> None:
        """A question the seller rejects: processed at once, hidden from buyers."""
        self.answers[index] = Answer(text, now, now, hidden=True)
        self.answered[index] = 1

    def pending_count(self, now: float) -> int:
        return sum(1 for a in self.answers.values() if a.visible_at > now)

    # --- a restarted sandbox ----------------------------------------------------------------------

    def extend(self, times: array[float], products: array[int]) -> None:
        """Items added after seeding, as a state file kept them (all unanswered until answers)."""
        self.times.extend(times)
        self.products.extend(products)
        self.answered.extend(bytes(len(times)))
        self._by_product = None

    def restore_answer(self, index: int, answer: Answer) -> None:
        """An answer as it stood; moderation still pending finishes at its own time."""
        self.answers[index] = answer
        if answer.hidden or answer.edits:
            self.answered[index] = 1  # rejected at once, or an edit of a published answer
        if not answer.hidden:
            heapq.heappush(self._pending, (answer.visible_at, index))


def _kth_match(flags: bytearray, needle: bytes, lo: int, hi: int, k: int) -> int:
    """Position of the k-th (0-based) byte equal to needle in flags[lo:hi]; it must exist.

    Bisects with bytearray.count, which runs in C, so a skip of 200 000 costs a few ms.
    """
    a, b, before = lo, hi, 0  # invariant: before == count(lo, a) <= k < count(lo, b)
    while b - a > 1:
        mid = (a + b) // 2
        seen = flags.count(needle, a, mid)
        if before + seen <= k:
            a, before = mid, before + seen
        else:
            b = mid
    return a


def _collect(flags: bytearray, needle: bytes, lo: int, hi: int, take: int, desc: bool) -> list[int]:
    """Positions of the first `take` bytes equal to needle in flags[lo:hi], from `lo` up (from
    `hi` down when `desc`)."""
    found: list[int] = []
    find = flags.rfind if desc else flags.find
    while len(found) < take:
        j = find(needle, lo, hi)
        if j < 0:
            break
        found.append(j)
        if desc:
            hi = j
        else:
            lo = j + 1
    return found


def seed_feed(
    channel: str,
    key: int,
    catalog: Catalog,
    count: int,
    start: float,
    end: float,
    answered_ratio: float,
) -> Feed:
    """`count` items spread over [start, end], denser towards the end (the shop grows)."""
    rnd = random.Random(key)  # noqa: S311 - reproducible test data, not secrets
    span, step = end - start, 1.0 / max(count, 1)
    uniform = rnd.random
    times = array("d", [start + span * ((i + uniform()) * step) ** 0.8 for i in range(count)])
    answered = bytearray([uniform() < answered_ratio for _ in range(count)])
    # The last two days are mostly still waiting for an answer.
    recent = bisect.bisect_left(times, end - VIEWED_AFTER)
    for i in range(recent, count):
        answered[i] = uniform() < answered_ratio * 0.25
    population = range(len(catalog.products))
    products = array("H", rnd.choices(population, cum_weights=catalog.cum_weights, k=count))
    return Feed(channel, key, times, answered, products)


# --- chats ----------------------------------------------------------------------------------------

SCRIPTED, SELLER_API, FOLLOWUP = 0, 1, 2  # event kinds


@dataclass(frozen=True)
class SentFile:
    name: str
    content_type: str
    size: int
    download_id: str


@dataclass(frozen=True)
class SentMessage:
    text: str
    files: tuple[SentFile, ...]
    sign: str


class Chats:
    """Chats of one seller and their event stream, ordered by strictly increasing addTimestamp."""

    _SCRIPT_CACHE = 4096

    def __init__(self, key: int, secret: bytes, catalog: Catalog, mean_messages: float) -> None:
        self.key = key
        self.secret = secret
        self.catalog = catalog
        self.mean_messages = mean_messages
        self.products = array("H")  # per chat
        self.last_event = array("q")  # per chat, -1 before the first event
        self.ev_ms = array("q")
        self.ev_chat = array("I")
        self.ev_seq = array("H")  # index into the chat's script (SCRIPTED events)
        self.ev_kind = bytearray()
        self.sent: dict[int, SentMessage] = {}
        self._scripts: dict[int, ChatScript] = {}

    def __len__(self) -> int:
        return len(self.products)

    @property
    def event_count(self) -> int:
        return len(self.ev_ms)

    def chat_id(self, chat: int) -> str:
        return "1:" + make_uuid(self.key, chat)

    def reply_sign(self, chat: int) -> str:
        return encode_sign(self.secret, chat)

    def chat_of_sign(self, sign: str) -> int | None:
        chat = decode_sign(self.secret, sign)
        return chat if chat is not None and chat < len(self.products) else None

    def event_id(self, event: int) -> str:
        return make_uuid(self.key ^ 0xE7E27, event)

    def script(self, chat: int) -> ChatScript:
        script = self._scripts.get(chat)
        if script is None:
            if len(self._scripts) >= self._SCRIPT_CACHE:
                self._scripts.clear()
            product = self.catalog.products[self.products[chat]]
            script = generator.chat_script(self.key, chat, product, self.mean_messages)
            self._scripts[chat] = script
        return script

    def add_chat(self, product: int) -> int:
        self.products.append(product)
        self.last_event.append(-1)
        return len(self.products) - 1

    def add_event(self, ts_ms: int, chat: int, kind: int, seq: int = 0) -> int:
        if self.ev_ms:
            ts_ms = max(ts_ms, self.ev_ms[-1] + 1)  # unique and increasing: `next` never skips one
        self.ev_ms.append(ts_ms)
        self.ev_chat.append(chat)
        self.ev_seq.append(seq)
        self.ev_kind.append(kind)
        event = len(self.ev_ms) - 1
        self.last_event[chat] = event
        return event

    def extend(
        self,
        products: array[int],
        ev_ms: array[int],
        ev_chat: array[int],
        ev_seq: array[int],
        ev_kind: bytes,
    ) -> None:
        """Chats and events that came after seeding, as a state file kept them."""
        self.products.extend(products)
        self.last_event.extend([-1] * len(products))
        first = len(self.ev_ms)
        self.ev_ms.extend(ev_ms)
        self.ev_chat.extend(ev_chat)
        self.ev_seq.extend(ev_seq)
        self.ev_kind.extend(ev_kind)
        for event in range(first, len(self.ev_ms)):
            self.last_event[self.ev_chat[event]] = event

    def open_chat(self, product: int, now: float) -> int:
        """A new chat: the buyer's opening messages, up to the first seller reply."""
        chat = self.add_chat(product)
        for seq, message in enumerate(self.script(chat).messages):
            if message.sender != "client":
                break
            self.add_event(int(now * 1000) + seq, chat, SCRIPTED, seq)
        return chat

    def events_after(self, cursor_ms: int | None, limit: int) -> range:
        start = 0 if cursor_ms is None else bisect.bisect_right(self.ev_ms, cursor_ms)
        return range(start, min(start + limit, len(self.ev_ms)))


def seed_chats(
    key: int, secret: bytes, catalog: Catalog, count: int, start: float, end: float, mean: float
) -> Chats:
    """`count` chats opened over [start, end]; messages after `end` have not happened yet."""
    chats = Chats(key, secret, catalog, mean)
    rnd = random.Random(key)  # noqa: S311 - reproducible test data, not secrets
    population = range(len(catalog.products))
    span, step = end - start, 1.0 / max(count, 1)
    # Chats open in time order and no message precedes its chat, so every pending message older
    # than the chat being opened can be written out: the heap only holds open conversations.
    pending: list[tuple[float, int, int]] = []
    for chat, product in enumerate(
        rnd.choices(population, cum_weights=catalog.cum_weights, k=count)
    ):
        chats.add_chat(product)
        opened = start + span * ((chat + rnd.random()) * step) ** 0.8
        while pending and pending[0][0] <= opened:
            _add_seeded(chats, heapq.heappop(pending))
        for seq, (_, offset) in enumerate(generator.chat_timeline(key, chat, mean)):
            if opened + offset > end:
                break
            heapq.heappush(pending, (opened + offset, chat, seq))
    while pending:
        _add_seeded(chats, heapq.heappop(pending))
    return chats


def _add_seeded(chats: Chats, event: tuple[float, int, int]) -> None:
    ts, chat, seq = event
    chats.add_event(int(ts * 1000), chat, SCRIPTED, seq)
