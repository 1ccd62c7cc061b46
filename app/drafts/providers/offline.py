"""The deterministic offline draft provider (the default).

A draft is assembled from parts chosen by channel, intent and rating:

    greeting · opening · intent body · grounding · closing · signature

- greeting: "Здравствуйте, Анна!" when the marketplace gave a usable first name, else neutral;
- review: thanks or an apology by rating, then the intent's point (defect → apology and how to
  return a defective item; sizing → how to pick a size; delivery; specs; return → the
  marketplace's return process), written for the customer and future buyers; question: a public
  answer; chat: shorter and personal, ends with a follow-up question. Returns and money are only
  mentioned for the `return_refund` and `defect_quality` intents.
- grounding on the seller's previous replies on the product (newest first), three rules:
  `signature` (the seller's sign-off, "С уважением, команда …"; chats take it from chat replies
  only), `stock_phrase` (a positive sentence the seller used in at least two replies, closing
  4–5★ reviews and questions instead of ours) and `intent_phrase` (the newest sentence of an
  earlier reply that the intent classifier puts on the draft's topic, for sizing, specs and
  availability: "Модель маломерит…"). Each reuse is a source;
- the product's typical intents (top 3, seen at least 3 times): a line when the draft's topic is
  one of them, or a tip in pre-purchase answers when sizing/specs/availability tops the list.
  A source only then.

Variants of a sentence are chosen by a stable hash (sha256) of the customer-facing inputs, so
the same request always yields the same text, and grounding that does not apply changes
nothing. Text reused from the customer or the seller is dropped when the guardrails flag it
(AI, contact details, rating requests, money off the platform, promises, blame and, outside the
return/defect intents, refunds) or when it carries an order number. Optional parts (the
grounding) are dropped first when a draft would exceed the channel's limit. No template, alone
or combined, breaks a guardrail (tests/drafts/test_offline_guardrails.py drafts the demo and
sandbox items to check).
"""

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.drafts import guardrails
from app.drafts.providers import phrases
from app.drafts.providers.base import (
    MAX_LENGTH,
    DraftRequest,
    DraftResult,
    PreviousReply,
    first_name,
)
from app.interactions import classify

TOP_INTENTS_CONSIDERED = 3  # only the product's three most frequent intents count as typical
TOP_INTENT_MIN_COUNT = 3  # … and only when seen at least this often
STOCK_PHRASE_MIN_REPLIES = 2
# Intents whose sentences in earlier replies state product facts worth repeating.
FACT_INTENTS = frozenset({"sizing_fit", "spec_compatibility", "availability_delivery"})


def _stems(*stems: str) -> re.Pattern[str]:
    return re.compile(r"(?<![а-яёa-z])(?:" + "|".join(stems) + r")", re.IGNORECASE)


# Reused text (the customer's pros, the seller's earlier sentences, the product name) is dropped
# unless the guardrails let a draft quote it (`guardrails.quotable`).
_GREETING = _stems(*phrases.GREETING_STEMS)
_SIGNATURE = _stems(*phrases.SIGNATURE_STEMS)
_POSITIVE = _stems(*phrases.POSITIVE_STEMS)
# Stock phrases are closing lines, not thanks for a particular review or question.
_CONTEXTUAL = _stems(*phrases.CONTEXTUAL_STEMS)
# "Иван, модель маломерит…": an earlier customer's name (or "Да,") before a reused sentence.
# Not before a clause: "Спасибо, что выбираете нас!" stays whole.
_LEADING_WORD = re.compile(
    r"^[A-ZА-ЯЁ][A-Za-zА-Яа-яЁё-]*,\s+"
    r"(?!(?:" + "|".join(phrases.CLAUSE_WORDS) + r")(?![а-яё]))"
)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
_WORD = re.compile(r"[а-яёa-z0-9]+", re.IGNORECASE)

Forms = dict[str, str]


def _product_forms(product_name: str | None) -> Forms:
    """Case forms of "the product" for the templates: «name» when it is short and clean (a cut
    name reads worse than none)."""
    name = " ".join(product_name.split()) if product_name else None
    if not name or len(name) > 60 or "«" in name or "»" in name:
        return phrases.PRODUCT
    if not _safe(name, refunds_allowed=False):
        return phrases.PRODUCT
    return {form: text.replace("{name}", name) for form, text in phrases.PRODUCT_NAMED.items()}


def _clip(text: str, limit: int) -> str | None:
    """The first clause of `text`, cut at a word boundary to at most `limit` characters."""
    text = " ".join(text.split())
    first = re.split(r"(?<=[.!?…;])\s+|\n", text, maxsplit=1)[0].rstrip(" .!?…;,")
    if len(first) <= limit:
        return first or None
    cut = first[:limit].rsplit(" ", 1)[0].rstrip(" ,;:-—")
    return cut if len(cut) >= 10 else None


def _safe(text: str, *, refunds_allowed: bool) -> bool:
    return guardrails.quotable(text, refund_solicited=refunds_allowed)


def _norm(sentence: str) -> str:
    return " ".join(_WORD.findall(sentence.lower().replace("ё", "е")))


def _similar(a: str, b: str) -> bool:
    """Word-set overlap: two sentences saying nearly the same thing (one is enough)."""
    wa, wb = set(_norm(a).split()), set(_norm(b).split())
    if not wa or not wb:
        return False
    return len(wa & wb) / len(wa | wb) >= 0.5


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _reusable_sentences(reply: PreviousReply) -> list[str]:
    """The reply's sentences without greetings and without a leading "Name, " / "Да, "."""
    found: list[str] = []
    for sentence in _sentences(reply.text):
        if _GREETING.match(sentence):
            continue
        stripped = _LEADING_WORD.sub("", sentence, count=1)
        found.append(stripped[:1].upper() + stripped[1:])
    return found


@dataclass
class _Part:
    text: str
    optional: bool = False  # dropped first when the draft exceeds the channel's limit
    source: dict[str, object] | None = None  # what this part was grounded on, if anything


@dataclass
class _Draft:
    request: DraftRequest
    intent: str
    key: str
    forms: Forms
    refunds_allowed: bool
    parts: list[_Part] = field(default_factory=list)
    product_named: bool = False  # the product's name is quoted once; later "товар"

    def pick(self, slot: str, options: Sequence[str], **values: str) -> str:
        """One of `options`, chosen by a stable hash of the request and the slot, filled in."""
        digest = hashlib.sha256(f"{slot}\x1f{self.key}".encode()).digest()
        text = options[int.from_bytes(digest[:8], "big") % len(options)]
        forms = self.forms
        if any("{" + form + "}" in text for form in forms):
            forms = phrases.PRODUCT if self.product_named else forms
            self.product_named = True
        for name, value in {**forms, **values}.items():
            text = text.replace("{" + name + "}", value)
        return text

    def add(
        self,
        slot: str,
        options: Sequence[str],
        *,
        optional: bool = False,
        source: dict[str, object] | None = None,
        **values: str,
    ) -> None:
        self.parts.append(_Part(self.pick(slot, options, **values), optional, source))

    def contains(self, sentence: str) -> bool:
        return any(_similar(sentence, s) for part in self.parts for s in _sentences(part.text))


def _request_key(request: DraftRequest) -> str:
    """What variants are chosen by: the customer-facing inputs only, so grounding that does not
    apply (an unrelated earlier reply, a top intent off topic) leaves the text unchanged."""
    fields: list[object] = [
        request.channel,
        request.text,
        request.pros,
        request.cons,
        request.rating,
        request.intent,
        request.customer_name,
        request.product_name,
    ]
    return repr(fields)


def _intent(request: DraftRequest) -> str:
    """The request's intent; classified from the customer's text when the caller had none."""
    if request.intent is None:
        return classify.classify_intent(request.text, request.pros, request.cons)
    return request.intent if request.intent in classify.INTENTS else "other"


# --- grounding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reuse:
    reply: PreviousReply  # the newest reply the text comes from
    use: str  # "signature" | "stock_phrase" | "intent_phrase"
    text: str
    seen_in: tuple[int, ...] = ()  # every reply with the text (signature, stock phrase)

    def source(self) -> dict[str, object]:
        source: dict[str, object] = {
            "kind": "previous_reply",
            "interaction_id": self.reply.interaction_id,
            "channel": self.reply.channel,
            "use": self.use,
            "text": self.text,
        }
        if self.seen_in:
            source["seen_in"] = list(self.seen_in)
        return source


def _signature(replies: Sequence[PreviousReply], channel: str) -> _Reuse | None:
    """The seller's sign-off: the closing line of a reply that starts like one."""
    found: list[tuple[PreviousReply, str]] = []
    for reply in replies:
        if channel == "chat" and reply.channel != "chat":
            continue  # chat messages carry no formal sign-off unless the seller signs chats
        lines = [line.strip() for line in reply.text.strip().splitlines() if line.strip()]
        if not lines:
            continue
        tail = lines[-1]
        if len(lines) > 1 and lines[-2].endswith(",") and _SIGNATURE.match(lines[-2]):
            tail = f"{lines[-2]} {tail}"  # "С уважением,\nкоманда Lumi"
        else:  # the last sentence: "Спасибо за отзыв! С уважением, команда Lumi."
            sentences = _sentences(tail)
            tail = sentences[-1] if sentences else tail
        if _SIGNATURE.match(tail) and len(tail) <= 120 and _safe(tail, refunds_allowed=False):
            found.append((reply, tail))
    return _most_common(found, "signature")


def _stock_phrase(replies: Sequence[PreviousReply], draft: _Draft) -> _Reuse | None:
    """A positive sentence the seller used in several replies ("Спасибо, что выбираете нас!")."""
    seen: list[tuple[PreviousReply, str]] = []
    question = draft.request.channel == "question"
    for reply in replies:
        unique = {_norm(s): s for s in _reusable_sentences(reply)}
        for sentence in unique.values():
            if (
                15 <= len(sentence) <= 160
                and not sentence.endswith("?")
                and _POSITIVE.search(sentence)
                and not _CONTEXTUAL.search(sentence)
                and not (question and phrases.PURCHASE_STEM in sentence.lower())  # not bought yet
                and not _SIGNATURE.match(sentence)
                and _safe(sentence, refunds_allowed=False)
            ):
                seen.append((reply, sentence))
    counts = Counter(_norm(s) for _, s in seen)
    frequent = [(r, s) for r, s in seen if counts[_norm(s)] >= STOCK_PHRASE_MIN_REPLIES]
    frequent = [(r, s) for r, s in frequent if not draft.contains(s)]
    return _most_common(frequent, "stock_phrase")


def _intent_phrase(replies: Sequence[PreviousReply], draft: _Draft) -> _Reuse | None:
    """The newest product fact on the draft's topic from an earlier reply ("Модель маломерит…")."""
    if draft.intent not in FACT_INTENTS:
        return None
    for reply in replies:
        for sentence in _reusable_sentences(reply):
            if (
                25 <= len(sentence) <= 250
                and not sentence.endswith("?")
                and not _SIGNATURE.match(sentence)
                and classify.classify_intent(sentence) == draft.intent
                and _safe(sentence, refunds_allowed=draft.refunds_allowed)
                and not draft.contains(sentence)
            ):
                return _Reuse(reply, "intent_phrase", sentence)
    return None


def _most_common(found: list[tuple[PreviousReply, str]], use: str) -> _Reuse | None:
    """The text used most often; on a tie the newest reply's (replies come newest first)."""
    if not found:
        return None
    counts = Counter(_norm(text) for _, text in found)
    best = max(counts.values())
    reply, text = next((r, t) for r, t in found if counts[_norm(t)] == best)
    seen_in = dict.fromkeys(r.interaction_id for r, t in found if _norm(t) == _norm(text))
    return _Reuse(reply, use, text, tuple(seen_in))


def _typical(top_intents: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    ranked = sorted(
        ((i, c) for i, c in top_intents if i in classify.INTENTS and i != "other"),
        key=lambda item: -item[1],
    )
    return [(i, c) for i, c in ranked[:TOP_INTENTS_CONSIDERED] if c >= TOP_INTENT_MIN_COUNT]


def _top_intents_part(draft: _Draft) -> None:
    typical = _typical(draft.request.top_intents)
    channel = draft.request.channel
    counts = dict(typical)
    recurring = phrases.RECURRING_CHAT if channel == "chat" else phrases.RECURRING
    if draft.intent in counts and draft.intent in recurring:
        source = _top_source(draft.intent, counts[draft.intent], "recurring_topic")
        draft.add("recurring", recurring[draft.intent], optional=True, source=source)
    elif channel != "review" and draft.intent == "pre_purchase" and typical:
        top, count = typical[0]
        if top in phrases.TIP:
            draft.add("tip", phrases.TIP[top], optional=True, source=_top_source(top, count, "tip"))


def _top_source(intent: str, count: int, use: str) -> dict[str, object]:
    return {"kind": "top_intents", "intent": intent, "count": count, "use": use}


# --- assembly -------------------------------------------------------------------------------


def _greeting(draft: _Draft) -> str:
    name = first_name(draft.request.customer_name)
    if name is None:
        return draft.pick("greeting", phrases.GREET)
    named = phrases.GREET_NAMED_CHAT if draft.request.channel == "chat" else phrases.GREET_NAMED
    return draft.pick("greeting", named, name=name)


def _review(draft: _Draft) -> None:
    request, intent = draft.request, draft.intent
    rating = request.rating if request.rating in (1, 2, 3, 4, 5) else 3
    topic = intent if intent in phrases.SORRY else "other"
    if rating >= 3:
        draft.add("thanks", phrases.THANKS[rating])
    if topic == "other":
        if rating <= 2:
            draft.add("sorry", phrases.SORRY_OTHER[rating])
    elif rating >= 4:
        draft.add("but", phrases.BUT[topic])
    else:
        draft.add("sorry", phrases.SORRY[topic])

    if topic == "defect_quality":
        draft.add("step", phrases.DEFECT_STEP_SOFT if rating >= 4 else phrases.DEFECT_STEP)
        draft.add("qc", phrases.DEFECT_QC)
    elif topic == "return_refund":
        draft.add("step", phrases.RETURN_STEPS)
        draft.add("rules", phrases.RETURN_RULES, optional=True)
    elif topic == "sizing_fit":
        draft.add("advice", phrases.SIZE_ADVICE)
        _seller_fact(draft)
        draft.add("help", phrases.SIZE_HELP[:1])
    elif topic == "availability_delivery":
        draft.add("delivery", phrases.DELIVERY)
        _seller_fact(draft)
        if rating <= 3:
            draft.add("status", phrases.DELIVERY_STATUS)
    elif topic == "spec_compatibility":
        draft.add("advice", phrases.SPEC)
        _seller_fact(draft)
        draft.add("help", phrases.SPEC_HELP[:1])
    else:
        _review_other(draft, rating)

    _top_intents_part(draft)
    if rating >= 4 and topic in ("other", "availability_delivery"):
        draft.add("future", phrases.FUTURE, optional=True)
    _closing(draft, phrases.CLOSE[rating], positive=rating >= 4)


def _review_other(draft: _Draft, rating: int) -> None:
    request = draft.request
    pros = _clip(request.pros.replace("«", "").replace("»", ""), 80) if request.pros else None
    if pros is not None and (pros.lower() in phrases.NOT_PROS or len(pros) < 3):
        pros = None
    if pros is not None and not _safe(pros, refunds_allowed=False):
        pros = None
    if rating >= 4:
        if pros:
            draft.add("pros", phrases.PROS, pros=pros)
        else:
            draft.add("liked", phrases.LIKED)
        if request.cons and request.cons.strip().lower() not in phrases.NOT_PROS:
            draft.add("cons", phrases.CONS_NOTED)
        elif rating == 4:
            draft.add("four", phrases.FOUR_STARS)
    elif rating == 3:
        draft.add("mixed", phrases.MIXED)
        if request.cons and request.cons.strip().lower() not in phrases.NOT_PROS:
            draft.add("cons", phrases.CONS_NOTED)
        else:
            draft.add("improve", phrases.IMPROVE)
    else:
        draft.add("noted", phrases.LOW_NOTED)
        draft.add("contact", phrases.LOW_CHAT)


def _question(draft: _Draft) -> None:
    intent = draft.intent
    draft.add("thanks", phrases.QUESTION_THANKS)
    if intent == "sizing_fit":
        draft.add("advice", phrases.SIZE_ADVICE_Q)
        _seller_fact(draft)
        draft.add("help", phrases.SIZE_HELP[1:])
    elif intent == "availability_delivery":
        draft.add("availability", phrases.AVAILABILITY_Q)
        _seller_fact(draft)
        draft.add("delivery", phrases.DELIVERY_TIME_Q)
    elif intent == "spec_compatibility":
        draft.add("advice", phrases.SPEC)
        _seller_fact(draft)
        draft.add("help", phrases.SPEC_HELP[1:])
    elif intent == "pre_purchase":
        draft.add("info", phrases.PRE_PURCHASE_Q)
        draft.add("help", phrases.PRE_PURCHASE_HELP)
    elif intent == "defect_quality":
        draft.add("quality", phrases.QUALITY_Q)
        draft.add("step", phrases.QUALITY_RETURN_Q)
    elif intent == "return_refund":
        draft.add("step", phrases.RETURN_STEPS)
        draft.add("rules", phrases.RETURN_RULES, optional=True)
    else:
        draft.add("info", phrases.OTHER_Q)
        draft.add("help", phrases.OTHER_HELP_Q)
    _top_intents_part(draft)
    _closing(draft, phrases.QUESTION_CLOSE, positive=True)


def _chat(draft: _Draft) -> None:
    intent = draft.intent if draft.intent in phrases.CHAT_BODY else "other"
    draft.add("body", phrases.CHAT_BODY[intent])
    _seller_fact(draft)
    _top_intents_part(draft)
    draft.add("question", phrases.CHAT_QUESTION[intent])
    signature = _signature(draft.request.previous_replies, "chat")
    if signature is not None:
        draft.parts.append(_Part(signature.text, optional=True, source=signature.source()))


def _seller_fact(draft: _Draft) -> None:
    """The seller's own words on the topic, right after our generic advice."""
    phrase = _intent_phrase(draft.request.previous_replies, draft)
    if phrase is not None:
        draft.parts.append(_Part(phrase.text, optional=True, source=phrase.source()))


def _closing(draft: _Draft, default: Sequence[str], *, positive: bool) -> None:
    """The seller's stock phrase closes positive replies, else one of ours; the signature last."""
    stock = _stock_phrase(draft.request.previous_replies, draft) if positive else None
    if stock is not None:
        draft.parts.append(_Part(stock.text, source=stock.source()))
    else:
        draft.add("close", default)
    signature = _signature(draft.request.previous_replies, draft.request.channel)
    if signature is not None:
        draft.parts.append(_Part(signature.text, optional=True, source=signature.source()))


def _fit(parts: list[_Part], limit: int) -> tuple[str, list[_Part]]:
    """Drop optional parts from the end until the text fits; cut at a sentence as a last resort.

    Returns the text and the parts kept (whose sources the result lists).
    """
    parts = list(parts)
    while len(" ".join(p.text for p in parts)) > limit and any(p.optional for p in parts):
        index = max(i for i, p in enumerate(parts) if p.optional)
        del parts[index]
    text = " ".join(p.text for p in parts)
    if len(text) <= limit:
        return text, parts
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    text = cut[: end + 1] if end > 0 else cut[: limit - 1].rsplit(" ", 1)[0] + "…"
    return text, [p for p in parts if p.text in text]


class OfflineProvider:
    """Intent- and rating-aware Russian templates grounded on the seller's earlier replies."""

    name = "offline"

    async def draft(self, request: DraftRequest) -> DraftResult:
        return self.compose(request)

    def compose(self, request: DraftRequest) -> DraftResult:
        """The draft, synchronously (pure function of the request)."""
        intent = _intent(request)
        draft = _Draft(
            request=request,
            intent=intent,
            key=_request_key(request),
            forms=_product_forms(request.product_name),
            refunds_allowed=intent in guardrails.REFUND_INTENTS,
        )
        draft.parts.append(_Part(_greeting(draft)))
        if request.channel == "review":
            _review(draft)
        elif request.channel == "question":
            _question(draft)
        else:
            _chat(draft)
        text, kept = _fit(draft.parts, MAX_LENGTH[request.channel])
        sources = [part.source for part in kept if part.source is not None]
        return DraftResult(text=text, provider=self.name, model=None, sources=sources)
