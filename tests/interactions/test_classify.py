from datetime import UTC, datetime, timedelta

import pytest

from app.interactions import classify


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Размер маломерит, берите на размер больше", "sizing_fit"),
        ("Сидит отлично, по росту подошло", "sizing_fit"),
        ("Когда будет в наличии 42 размер?", "availability_delivery"),
        ("Сколько идёт доставка до Казани?", "availability_delivery"),
        ("Подойдет ли к iPhone 15?", "spec_compatibility"),
        ("Какой материал подошвы?", "spec_compatibility"),
        ("Пришёл бракованный, шов разошёлся", "defect_quality"),
        ("Через неделю перестал работать", "defect_quality"),
        ("Хочу вернуть деньги, товар не подошёл", "return_refund"),
        ("Оформите возврат, пожалуйста", "return_refund"),
        ("Подскажите, стоит ли брать для подарка?", "pre_purchase"),
        ("Отличные кроссовки, спасибо!", "other"),
        ("Работа отличная, ботинки супер", "other"),
        ("", "other"),
    ],
)
def test_intent_rules(text: str, intent: str) -> None:
    assert classify.classify_intent(text) == intent


def test_refund_wins_over_defect_when_both_are_present() -> None:
    assert classify.classify_intent("Брак, верните деньги") == "return_refund"


@pytest.mark.parametrize(
    ("rating", "intent", "text", "level"),
    [
        (1, "defect_quality", "брак", "urgent"),
        (5, "other", "ударило током при включении", "urgent"),
        (2, "sizing_fit", "мал", "high"),
        (3, "other", "нормально", "normal"),
        (5, "defect_quality", "немного брака", "normal"),
        (5, "other", "супер", "low"),
    ],
)
def test_review_priority(rating: int, intent: str, text: str, level: str) -> None:
    priority = classify.review_priority(rating, intent, text)

    assert priority.level == level
    assert priority.reason


def test_question_and_chat_priority() -> None:
    assert classify.question_priority("pre_purchase", "стоит ли").level == "high"
    assert classify.question_priority("other", "привет").level == "normal"
    assert classify.chat_priority("return_refund", "верните").level == "urgent"
    assert classify.chat_priority("other", "здравствуйте").level == "high"


def test_sla_uses_seller_targets_then_defaults() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    targets = {"review": {"default": 600, "by_intent": {"defect_quality": 120}}}

    assert classify.sla_due(targets, "review", "defect_quality", since) == since + timedelta(
        minutes=120
    )
    assert classify.sla_due(targets, "review", "other", since) == since + timedelta(minutes=600)
    assert classify.sla_due(targets, "question", None, since) == since + timedelta(
        minutes=classify.DEFAULT_SLA_MINUTES["question"]
    )
