"""Rule-based intent, priority and SLA for new interactions (heavy normalisation only).

Rules match Russian word stems at word starts, case-insensitively, so inflected forms match
("брак", "браком", "бракованный") while unrelated words containing the letters do not.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from app.interactions.models import PriorityLevel

# The intents, defined here only: schemas, settings and draft providers import them.
Intent = Literal[
    "return_refund",
    "defect_quality",
    "sizing_fit",
    "spec_compatibility",
    "availability_delivery",
    "pre_purchase",
    "other",
]
INTENTS: tuple[Intent, ...] = get_args(Intent)


def _stems(*stems: str) -> re.Pattern[str]:
    return re.compile(r"(?<![а-яёa-z])(?:" + "|".join(stems) + ")", re.IGNORECASE)


# Checked in this order: the first match wins (a refund request about a defect is a refund).
_INTENT_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "return_refund",
        _stems(
            "возврат",
            "вернут",
            "вернул",
            "верните",
            "возвращ",
            "деньги",
            "денег",
            "возмещ",
            "компенсац",
            "обмен",
            "обменя",
            "refund",
        ),
    ),
    (
        "defect_quality",
        _stems(
            "брак",
            "слома",
            "сломал",
            "порва",
            "дефект",
            "не работа",
            "перестал",
            "трещин",
            "пятн",
            "запах",
            "воня",
            "некачеств",
            "развалил",
            "отклеил",
            "облез",
            "полинял",
            "линяет",
            "катышк",
            "разошл",
            "царапин",
            "подделк",
            "разбит",
            "протек",
            "не включ",
        ),
    ),
    (
        "availability_delivery",
        _stems(
            "налич",
            "доставк",
            "доставя",
            "привез",
            "когда будет",
            "поступ",
            "склад",
            "отправ",
            "пришл",
            "пришёл",
            "пришел",
            "курьер",
            "пункт выдач",
            "пвз",
            "срок доставк",
        ),
    ),
    (
        "sizing_fit",
        _stems(
            "размер",
            "маломер",
            "большемер",
            "велик",
            "мала",
            "малы",
            "мал ",
            "тесн",
            "жмут",
            "жмёт",
            "жмет",
            "рост",
            "длин",
            "ширин",
            "обхват",
            "талии",
            "бёдр",
            "бедр",
            "сел по",
            "села по",
            "сидит",
            "посадк",
            "на ногу",
            "полнот",
        ),
    ),
    (
        "spec_compatibility",
        _stems(
            "совмест",
            "подойд",
            "подходит ли",
            "подходит к",
            "модел",
            "характеристик",
            "материал",
            "состав",
            "мощност",
            "аккумулят",
            "батаре",
            "разъ[её]м",
            "зарядк",
            "вольт",
            "ватт",
            "гарант",
            "комплект",
            "инструкц",
        ),
    ),
    (
        "pre_purchase",
        _stems(
            "стоит ли",
            "посоветуйте",
            "подскажите",
            "есть ли",
            "а можно",
            "можно ли",
            "будет ли",
            "какой",
            "какая",
            "какие",
            "сколько",
        ),
    ),
)

# Words that make a complaint urgent whatever the rating: health, safety, fraud, legal threats.
_URGENT = _stems(
    "опасн",
    "аллерги",
    "ожог",
    "отравл",
    "травм",
    "током",
    "искр",
    "загорел",
    "дым",
    "мошенн",
    "обман",
    "суд",
    "роспотребнадзор",
    "прокуратур",
    "претензи",
)

DEFAULT_SLA_MINUTES = {"review": 24 * 60, "question": 4 * 60, "chat": 60}


def classify_intent(*texts: str | None) -> str:
    joined = " ".join(t for t in texts if t)
    if not joined.strip():
        return "other"
    for intent, pattern in _INTENT_RULES:
        if pattern.search(joined):
            return intent
    return "other"


@dataclass(frozen=True)
class Priority:
    level: PriorityLevel
    reason: str


# What a buyer complains of when something went wrong: urgent in a low review or in a chat.
PROBLEM_INTENTS: tuple[Intent, ...] = ("defect_quality", "return_refund")


def review_priority(rating: int, intent: str, *texts: str | None) -> Priority:
    joined = " ".join(t for t in texts if t)
    if _URGENT.search(joined):
        return Priority("urgent", "safety, fraud or legal wording")
    if rating <= 2 and intent in PROBLEM_INTENTS:
        return Priority("urgent", f"{rating}★ with {intent}")
    if rating <= 2:
        return Priority("high", f"{rating}★ review")
    if rating == 3:
        return Priority("normal", "3★ review")
    if intent in PROBLEM_INTENTS:
        return Priority("normal", f"{rating}★ mentioning {intent}")
    return Priority("low", f"{rating}★ review")


def question_priority(intent: str, text: str | None) -> Priority:
    if _URGENT.search(text or ""):
        return Priority("urgent", "safety, fraud or legal wording")
    if intent in ("pre_purchase", "availability_delivery", "sizing_fit", "spec_compatibility"):
        return Priority("high", f"pre-purchase question ({intent}): answer wins the sale")
    return Priority("normal", f"question ({intent})")


def chat_priority(intent: str, text: str | None) -> Priority:
    if _URGENT.search(text or "") or intent in PROBLEM_INTENTS:
        return Priority("urgent", f"buyer chat about {intent}")
    return Priority("high", "buyer chat")


def sla_minutes(sla_targets: dict[str, Any], channel: str, intent: str | None) -> int:
    """Per-seller target: {"review": {"default": 1440, "by_intent": {"defect_quality": 240}}}."""
    channel_targets = sla_targets.get(channel)
    if isinstance(channel_targets, dict):
        by_intent = channel_targets.get("by_intent")
        if intent and isinstance(by_intent, dict) and isinstance(by_intent.get(intent), int):
            return int(by_intent[intent])
        if isinstance(channel_targets.get("default"), int):
            return int(channel_targets["default"])
    return DEFAULT_SLA_MINUTES[channel]


def sla_due(
    sla_targets: dict[str, Any], channel: str, intent: str | None, since: datetime
) -> datetime:
    return since + timedelta(minutes=sla_minutes(sla_targets, channel, intent))
