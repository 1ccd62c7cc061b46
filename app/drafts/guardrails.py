"""Guardrails for reply texts: banned wording, unsolicited refund offers, marketplace length limits.

`check()` returns findings; drafts carry all of them, and sending is blocked only by `blocking()`
ones (severity "error"). Severity depends on the channel:

| finding              | review, question (public) | chat (private) |
|----------------------|---------------------------|----------------|
| ai_mention           | error                     | error          |
| promise              | error                     | warning        |
| blame                | error                     | warning        |
| dismissive           | error                     | warning        |
| unsolicited_refund   | error                     | warning        |
| empty, too_long      | error                     | error          |
| too_short (< 2)      | error                     | –              |

An unsolicited refund offer blocks on public channels because every buyer reads it: it invites
refund requests for no reason and promises what only the marketplace's return process decides.
The offer is solicited when the customer's text is about a return, money or a defect (the
`return_refund` and `defect_quality` intents of `app.interactions.classify`).

Matching is case-insensitive and whole-word: each pattern must start and end at a word boundary,
so inflections are spelled out (`бот(?:а|у|ом…)?`, `нейросет\\w*`) and "работа" or "ботинки"
never match "бот". Patterns are written with "е"; the text is matched with "ё" folded to "е".
Each category is reported once, with its first match.

Limits (docs/wb-api.md): review answers 2..5000 characters, chat messages up to 1000. WB documents
no limit for question answers; we apply the review limit, as our sandbox does. Over-length counts
the text as sent; too-short counts it without surrounding whitespace.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from app.interactions import classify

Channel = Literal["review", "question", "chat"]
Severity = Literal["warning", "error"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One hit. `code`: ai_mention, promise, blame, dismissive, unsolicited_refund, too_long,
    too_short or empty; `match`: the offending fragment of the text, if there is one."""

    code: str
    severity: Severity
    message: str
    match: str | None


def _words(*patterns: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)(?:" + "|".join(patterns) + r")(?!\w)", re.IGNORECASE)


# (code, message, pattern); checked and reported in this order.
_PHRASE_RULES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    (
        "ai_mention",
        "Mentions AI, a bot or automated answering.",
        _words(
            r"(?:чат-?)?бот(?:а|у|ом|е|ы|ов|ам|ами|ах)?",
            r"(?:chat)?bots?",
            r"ии",
            r"искусственн\w*\s+интеллект\w*",
            r"нейросет\w*",
            r"нейронк\w*",
            r"нейронн\w*\s+сет\w*",
            r"языков\w*\s+модел\w*",
            r"(?:chat\s?|чат\s?|yandex\s?|яндекс\s?)?gpt(?:-?\d\w*)?",
            r"openai",
            r"gigachat|гигачат\w*",
            r"автоответ\w*",
            r"автоматическ\w*\s+ответ\w*",
            r"сгенерирова\w*",
        ),
    ),
    (
        "promise",
        "Promises something the seller cannot guarantee.",
        _words(
            r"гарантиру(?:ем|ю)",
            r"гарантированн?о",
            r"обеща(?:ем|ю)",
            r"обязательно\s+(?:вам\s+)?(?:верн|возмест|компенсир|замен)\w*",
            r"на\s*100\s*%",
            r"100\s*%\s*гарант\w*",
            r"гарант\w*\s+(?:на\s+)?100\s*%",
            r"(?:больше|впредь|никогда)\s+не\s+повтор\w*",
            r"никогда\s+не\s+(?:будет|\w+(?:ет|ит|ут|ют|ат|ят|ется|ится|утся|ются|атся|ятся))",
        ),
    ),
    (
        "blame",
        "Blames the customer.",
        _words(
            r"вы\s+(?:сами\s+)?винова(?:т|та|ты)",
            r"(?<!мы\s)(?<!мы\sи\s)(?<!я\s)сам[аи]?\s+винова(?:т|та|ты)",
            r"ваша\s+вина",
            r"по\s+вашей\s+(?:же\s+)?вине",
            r"вина\s+покупател\w*",
            r"вы\s+(?:сами\s+)?(?:не\s?правильно|неверно|некорректно)\s+\w+",
            r"вы\s+(?:сами\s+)?(?:сломали|испортили|порвали|повредили)",
            r"(?:надо|нужно|следовало)\s+было\s+(?:внимательн\w*\s+)?"
            r"(?:читать|прочитать|прочесть|смотреть|посмотреть|изучить|думать)",
            r"читайте\s+внимательн\w*",
        ),
    ),
    (
        "dismissive",
        "Dismisses the customer's problem.",
        _words(
            r"не\s+наш[аи]\s+проблем\w*",
            r"это\s+ваши\s+проблемы",
            r"ничем\s+не\s+(?:можем|могу|сможем|смогу)\s+(?:вам\s+)?помочь",
            r"ничем\s+(?:вам\s+)?помочь\s+не\s+(?:можем|могу|сможем|смогу)",
            r"обращайтесь\s+куда\s+(?:хотите|угодно)",
            r"(?:нас|меня)\s+(?:это\s+)?не\s+касает\w*",
            r"это\s+нас\s+не\s+касает\w*",
            r"не\s+к\s+нам",
            r"нам\s+все\s+равно",
            r"(?:разбирайтесь\s+сами|сами\s+разбирайтесь)",
        ),
    ),
)

_REFUND_OFFER = _words(
    r"возврат\w*",
    r"верн\w*\s+(?:вам\s+)?(?:ваши\s+)?(?:деньги|денежные\s+средства|средства|стоимост\w*|оплату|товар\w*)",
    r"(?:деньги|средства)\s+(?:вам\s+)?верн\w*",
    r"компенс\w*",
    r"возмест\w*|возмещ\w*",
    r"обмен(?:а|е|ом|у|ы)?|обменя\w*",
    r"refund\w*",
)
_REFUND_MESSAGE = "Offers a return or refund the customer did not ask about."
_SOLICITING_INTENTS = frozenset({"return_refund", "defect_quality"})

_STRICT: Mapping[str, Severity] = {
    "ai_mention": "error",
    "promise": "error",
    "blame": "error",
    "dismissive": "error",
    "unsolicited_refund": "error",
}
_RELAXED: Mapping[str, Severity] = {
    "ai_mention": "error",
    "promise": "warning",
    "blame": "warning",
    "dismissive": "warning",
    "unsolicited_refund": "warning",
}


@dataclass(frozen=True, slots=True)
class _Policy:
    min_length: int
    max_length: int
    severities: Mapping[str, Severity]


_POLICIES: Mapping[Channel, _Policy] = {
    "review": _Policy(min_length=2, max_length=5000, severities=_STRICT),
    "question": _Policy(min_length=2, max_length=5000, severities=_STRICT),
    "chat": _Policy(min_length=1, max_length=1000, severities=_RELAXED),
}


def max_length(channel: Channel) -> int:
    return _POLICIES[channel].max_length


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def check(text: str | None, channel: Channel, *, customer_text: str | None = None) -> list[Finding]:
    if text is None or not text.strip():
        return [Finding("empty", "error", "The reply is empty.", None)]
    policy = _POLICIES[channel]
    return [
        *_length_findings(text, channel, policy),
        *_phrase_findings(text, policy),
        *_refund_findings(text, customer_text, policy),
    ]


def _length_findings(text: str, channel: Channel, policy: _Policy) -> list[Finding]:
    if len(text) > policy.max_length:
        message = f"{len(text)} characters; {channel} replies allow at most {policy.max_length}."
        return [Finding("too_long", "error", message, None)]
    if len(text.strip()) < policy.min_length:
        message = f"{channel} replies need at least {policy.min_length} characters."
        return [Finding("too_short", "error", message, None)]
    return []


def _phrase_findings(text: str, policy: _Policy) -> list[Finding]:
    folded = _fold(text)
    findings: list[Finding] = []
    for code, message, pattern in _PHRASE_RULES:
        if found := pattern.search(folded):
            findings.append(Finding(code, policy.severities[code], message, _original(text, found)))
    return findings


def _refund_findings(text: str, customer_text: str | None, policy: _Policy) -> list[Finding]:
    found = _REFUND_OFFER.search(_fold(text))
    if found is None or classify.classify_intent(customer_text) in _SOLICITING_INTENTS:
        return []
    severity = policy.severities["unsolicited_refund"]
    return [Finding("unsolicited_refund", severity, _REFUND_MESSAGE, _original(text, found))]


def _fold(text: str) -> str:
    """Fold ё to е; the length is unchanged, so match offsets stay valid in the original."""
    return text.replace("ё", "е").replace("Ё", "Е")


def _original(text: str, found: re.Match[str]) -> str:
    return text[found.start() : found.end()]
