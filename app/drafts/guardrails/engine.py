"""Normalisation and matching: the text is normalised once, every rule is compiled with
look-alike classes, and each match is reported as the fragment of the original text.

Normalisation (`normalise`), character by character:

1. compatibility folding (NFKC, done as NFKD so that accents can be dropped): fullwidth, circled
   and mathematical letters and digits become plain ones, "ё" becomes "е", "й" becomes "и";
2. case folding;
3. removed: format characters (Unicode category Cf: zero-width spaces and joiners, the soft
   hyphen, the word joiner, the byte order mark, bidirectional controls), combining marks (Mn,
   Me: accents, strike-through) and the invisible fillers in `INVISIBLE`.

Each normalised character remembers the span of the original it came from (a letter with its
combining marks, a ligature), so a finding reports the original fragment, invisible characters
inside it included.

Look-alikes are folded in the patterns rather than in the text: every letter a pattern spells
(and the digit 0) matches itself and the characters in `LOOKALIKES` (о/o/0/ο, а/a/@, е/e/3, з/3,
б/6 …). One character may then stand for several letters (3 for з and for е), a number keeps
its digits for the rules that read digits (phones, "100 %"), and the text keeps its
script for the script guard: a match that is a plain word of one script (letters of that
script only, no digit or symbol standing for a letter) counts only if the pattern matches it
as spelled. So "вот" is not the Latin "bot", while "бoт" (a Latin o), "б0т" or "BОТ" (mixed)
are the obfuscations they look like.
"""

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from app.connectors.base import Channel
from app.drafts.guardrails.rules import (
    LIMITS,
    NOT_QUOTABLE,
    REFUND_INTENTS,
    REFUND_OFFER,
    RULES,
    SEVERITIES,
    Limits,
    Rule,
    Severity,
)
from app.interactions import classify

# What may stand for a letter in a normalised (case folded) text, besides the letter itself.
LOOKALIKES: dict[str, str] = {
    # Cyrillic letters: Latin and Greek twins, digits and symbols.
    "а": "aα@",
    "б": "6",
    "в": "bβ",
    "е": "eε3",
    "з": "3",
    "к": "kκ",
    "м": "mμ",
    "н": "h",
    "о": "oο0",
    "р": "pρ",
    "с": "cϲ",
    "т": "tτ",
    "у": "yγ",
    "х": "xχ",
    "ч": "4",
    # Latin letters: Cyrillic and Greek twins, digits and symbols.
    "a": "аα@",
    "b": "вь6",
    "c": "сϲ",
    "d": "ԁ",
    "e": "еε3",
    "h": "нһ",
    "i": "іι1!|",
    "j": "ј",
    "k": "кκ",
    "l": "ӏ1|",
    "m": "м",
    "o": "оο0",
    "p": "рρ",
    "q": "ԛ",
    "s": "ѕ5$",
    "t": "тτ",
    "v": "ν",
    "w": "ԝω",
    "x": "хχ",
    "y": "уγ",
    # Digits a pattern spells ("100 %"): letters standing for them.
    "0": "оoο",
}
# Characters that stand for letters but are none (digits and symbols): their presence makes a
# fragment an obfuscation whatever its letters.
_STAND_INS = frozenset(c for chars in LOOKALIKES.values() for c in chars if not c.isalpha())
# Invisible characters outside category Cf: Hangul fillers and the blank Braille pattern.
INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Bidirectional controls (embeddings, overrides, isolates, marks): they reorder what the reader
# sees, so a text with any of them is refused rather than silently changed.
BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
_DROPPED_CATEGORIES = frozenset({"Cf", "Mn", "Me"})


@dataclass(frozen=True, slots=True)
class Normalised:
    """The normalised text and, for each of its characters, the original span it came from."""

    original: str
    text: str
    starts: Sequence[int]
    ends: Sequence[int]

    def fragment(self, start: int, end: int) -> str:
        """The original text behind the normalised characters start..end."""
        return self.original[self.starts[start] : self.ends[end - 1]]


@functools.lru_cache(maxsize=4096)
def fold(chars: str) -> str:
    """Compatibility-fold and case-fold `chars`, dropping what `normalise` drops (cached: texts
    are mostly the same few hundred characters)."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", chars).casefold())
    return "".join(
        c
        for c in folded
        if c not in INVISIBLE and unicodedata.category(c) not in _DROPPED_CATEGORIES
    )


def normalise(text: str) -> Normalised:
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    index = 0
    while index < len(text):
        end = index + 1  # a character with the combining marks that follow it
        while end < len(text) and unicodedata.category(text[end]) in ("Mn", "Me"):
            end += 1
        for char in fold(text[index:end]):
            out.append(char)
            starts.append(index)
            ends.append(end)
        index = end
    return Normalised(text, "".join(out), starts, ends)


def _letter(char: str, lookalikes: bool) -> str:
    """A pattern letter as the text shows it after `normalise`, with its look-alikes."""
    base = fold(char)
    if char != char.lower() or len(base) != 1:
        raise ValueError(f"pattern letters are lower case and plain: {char!r}")
    if not lookalikes or base not in LOOKALIKES:
        return re.escape(base)
    return "[" + "".join(re.escape(c) for c in base + LOOKALIKES[base]) + "]"


def _class(body: str, lookalikes: bool) -> str:
    """A character class's body ("^…" included) with its single letters folded."""
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            out.append(body[index : index + 2])
            index += 2
        elif index + 2 < len(body) and body[index + 1] == "-":  # a range, as written
            out.append(body[index : index + 3])
            index += 3
        elif char.isalpha() or char in LOOKALIKES:
            letter = _letter(char, lookalikes)
            out.append(letter[1:-1] if letter.startswith("[") else letter)
            index += 1
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _class_end(source: str, start: int) -> int:
    """The index of the "]" closing the class that opens at `start`."""
    index = start + 1
    while source[index] != "]":
        index += 2 if source[index] == "\\" else 1
    return index


def expand(source: str, *, lookalikes: bool = True) -> str:
    """The pattern with every literal letter folded like the text (ё→е, й→и) and, with
    `lookalikes`, every letter and 0 turned into a class of itself and its look-alikes."""
    out: list[str] = []
    index = 0
    while index < len(source):
        char = source[index]
        if char == "\\":
            out.append(source[index : index + 2])
            index += 2
        elif char == "[":
            end = _class_end(source, index)
            out.append("[" + _class(source[index + 1 : end], lookalikes) + "]")
            index = end + 1
        elif source.startswith("(?", index):  # (?: (?= (?! (?<= (?<!
            end = index + 2
            while source[end] in "<=!:":
                end += 1
            out.append(source[index:end])
            index = end
        elif char == "{":  # a quantifier
            end = source.index("}", index)
            out.append(source[index : end + 1])
            index = end + 1
        elif char.isalpha() or char in LOOKALIKES:
            out.append(_letter(char, lookalikes))
            index += 1
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _script(letter: str) -> str:
    if letter.isascii():
        return "latin"
    return "cyrillic" if "\u0400" <= letter <= "\u04ff" else "other"


def _natural(fragment: str) -> bool:
    """Letters of a single script (Latin or Cyrillic) and nothing standing in for a letter."""
    if any(char in _STAND_INS for char in fragment):
        return False
    scripts = {_script(char) for char in fragment if char.isalpha()}
    return len(scripts) == 1 and "other" not in scripts


@dataclass(frozen=True, slots=True)
class Matcher:
    """A rule's pattern with look-alikes (`folded`) and as spelled (`plain`)."""

    folded: re.Pattern[str]
    plain: re.Pattern[str]

    @classmethod
    def compile(cls, source: str) -> "Matcher":
        return cls(re.compile(expand(source)), re.compile(expand(source, lookalikes=False)))

    def matches(self, text: Normalised) -> Iterator[tuple[int, int]]:
        """Spans of the normalised text that the rule flags, in order; the script guard
        drops a plain word of one script that only its look-alikes made match."""
        for found in self.folded.finditer(text.text):
            start, end = found.span()
            fragment = text.text[start:end]
            if not _natural(fragment) or self.plain.fullmatch(text.text, start, end):
                yield start, end

    def first(self, text: Normalised) -> tuple[int, int] | None:
        return next(self.matches(text), None)


# --- checking a reply --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """One hit. `code`: a rule's code (rules.SEVERITIES), bidi_control, empty, too_long or
    too_short; `match`: the offending fragment of the original text, if there is one."""

    code: str
    severity: Severity
    message: str
    match: str | None


_MATCHERS: tuple[tuple[Rule, Matcher], ...] = tuple(
    (rule, Matcher.compile(rule.pattern)) for rule in (*RULES, REFUND_OFFER)
)


_NOT_QUOTABLE = tuple(re.compile(pattern, re.IGNORECASE) for pattern in NOT_QUOTABLE)


def max_length(channel: Channel) -> int:
    return LIMITS[channel].max_length


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def check(
    text: str | None,
    channel: Channel,
    *,
    customer_text: str | None = None,
    intent: str | None = None,
) -> list[Finding]:
    """Everything wrong with `text` as a reply on `channel` to a customer who wrote
    `customer_text`, on an item of `intent`: either may make talk of refunds solicited."""
    if text is None or not text.strip():
        return [Finding("empty", "error", "The reply is empty.", None)]
    normalised = normalise(text)
    limits = LIMITS[channel]
    findings = _bidi_findings(text)
    if not _has_content(normalised.text, needs_words=limits.needs_words):
        return [*findings, Finding("empty", "error", _NO_CONTENT[limits.needs_words], None)]
    solicited = (
        intent in REFUND_INTENTS or classify.classify_intent(customer_text) in REFUND_INTENTS
    )
    severities = SEVERITIES[channel]
    return [
        *findings,
        *_length_findings(text, channel, limits),
        *(
            Finding(code, severities[code], message, match)
            for code, message, match in _wording(normalised, refund_solicited=solicited)
        ),
    ]


def wording(text: str, *, refund_solicited: bool) -> list[str]:
    """The codes of the wording rules that `text` breaks on any channel, bidi controls
    included: for a caller that quotes a fragment and wants none of them (the offline provider
    reusing earlier text)."""
    codes = [code for code, _, _ in _wording(normalise(text), refund_solicited=refund_solicited)]
    return [*codes, *(f.code for f in _bidi_findings(text))]


def quotable(text: str, *, refund_solicited: bool) -> bool:
    """Whether a draft may quote `text` (someone else's words): no wording rule broken (refund
    talk only when `refund_solicited`), no bidi control, nothing of `NOT_QUOTABLE`."""
    if any(pattern.search(text) for pattern in _NOT_QUOTABLE):
        return False
    return not wording(text, refund_solicited=refund_solicited)


def _wording(text: Normalised, *, refund_solicited: bool) -> list[tuple[str, str, str]]:
    """(code, message, original fragment) per code broken, each with its earliest match."""
    first: dict[str, tuple[int, str, str]] = {}
    for rule, matcher in _MATCHERS:
        if rule is REFUND_OFFER and refund_solicited:
            continue
        span = matcher.first(text)
        if span is not None and (rule.code not in first or span[0] < first[rule.code][0]):
            first[rule.code] = (span[0], rule.message, text.fragment(*span))
    return [(code, message, match) for code, (_, message, match) in first.items()]


def _bidi_findings(text: str) -> list[Finding]:
    """One finding for all the bidirectional controls in `text`; its match is the first."""
    controls = list(dict.fromkeys(c for c in text if c in BIDI_CONTROLS))
    if not controls:
        return []
    names = ", ".join(f"U+{ord(c):04X}" for c in controls)
    message = f"Contains bidirectional control characters ({names}) that reorder what is shown."
    return [Finding("bidi_control", "error", message, controls[0])]


_NO_CONTENT = {
    True: "The reply has no words: only punctuation, symbols or invisible characters.",
    False: "The reply has only punctuation or invisible characters.",
}


def _has_content(normalised: str, *, needs_words: bool) -> bool:
    if needs_words:
        return any(c.isalnum() for c in normalised)
    return any(unicodedata.category(c)[0] not in "PZC" for c in normalised)


def _length_findings(text: str, channel: Channel, limits: Limits) -> list[Finding]:
    if len(text) > limits.max_length:
        message = f"{len(text)} characters; {channel} replies allow at most {limits.max_length}."
        return [Finding("too_long", "error", message, None)]
    if len(text.strip()) < limits.min_length:
        message = f"{channel} replies need at least {limits.min_length} characters."
        return [Finding("too_short", "error", message, None)]
    return []
