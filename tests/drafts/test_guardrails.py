import dataclasses
import json
import re
from typing import Any, get_args

import pytest

from app.drafts import guardrails
from app.drafts.guardrails import Channel, Finding, rules

E, W = "error", "warning"
CHANNELS: tuple[Channel, ...] = ("review", "question", "chat")

GOOD_REPLIES = (
    "Здравствуйте! Спасибо за отзыв и высокую оценку. Рады, что товар вам понравился. "
    "Ждём вас снова!",
    "Добрый день! Размер соответствует таблице на странице товара. При росте 170 см "
    "рекомендуем размер M. Хорошего дня!",
    "Здравствуйте! Нам очень жаль, что куртка не подошла по посадке. Мы передали ваш отзыв "
    "производству, чтобы сделать модель удобнее. Спасибо, что помогаете нам стать лучше!",
)


def _text(length: int) -> str:
    return ("Спасибо за отзыв! " * (length // 18 + 1))[:length]


def _codes(findings: list[Finding]) -> list[tuple[str, str]]:
    return sorted((f.code, f.severity) for f in findings)


def case(
    case_id: str,
    channel: Channel,
    text: str,
    *expected: tuple[str, str],
    customer: str | None = None,
) -> Any:
    return pytest.param(text, channel, customer, sorted(expected), id=case_id)


CASES = [
    # --- ai_mention: "бот" and its inflections, never inside other words ---
    case("ai-bot", "review", "Ответ подготовил бот.", ("ai_mention", E)),
    case("ai-chat-bot", "review", "Это ответил наш чат-бот", ("ai_mention", E)),
    case("ai-bota", "review", "Спросили у бота, он не знает", ("ai_mention", E)),
    case("ai-botom", "question", "Отвечаем ботом круглосуточно", ("ai_mention", E)),
    case("ai-boty", "review", "Наши боты всё проверили", ("ai_mention", E)),
    case("ai-upper", "review", "БОТ ОТВЕТИЛ", ("ai_mention", E)),
    case("ai-not-rabota", "review", "Спасибо за вашу работу!"),
    case("ai-not-zabota", "review", "Мы с заботой относимся к покупателям"),
    case("ai-not-botinki", "review", "Ботинки маломерят, берите больше"),
    case("ai-not-botoks", "question", "Крем с ботокс-эффектом"),
    case("ai-not-robot", "question", "Робот-пылесос заряжается 4 часа"),
    # --- ai_mention: ИИ, neural nets, ChatGPT, autoresponders ---
    case("ai-ii", "question", "Ответ подготовлен ИИ", ("ai_mention", E)),
    case("ai-ii-hyphen", "question", "ИИ-помощник подобрал размер", ("ai_mention", E)),
    case("ai-not-linii", "question", "Есть в линии Pro и в линии Lite"),
    case("ai-neuroset", "review", "Текст написала нейросеть", ("ai_mention", E)),
    case("ai-neurosetyu", "review", "Отвечено нейросетью", ("ai_mention", E)),
    case("ai-neuroseti", "chat", "Нейросети тут ни при чём", ("ai_mention", E)),
    case("ai-chatgpt", "review", "Спасибо, ответ от ChatGPT", ("ai_mention", E)),
    case(
        "ai-artificial-intelligence",
        "review",
        "Искусственный интеллект изучил отзыв",
        ("ai_mention", E),
    ),
    case("ai-chat-autoresp", "chat", "Я автоответчик магазина", ("ai_mention", E)),
    case("ai-chat-auto", "chat", "Это автоматический ответ", ("ai_mention", E)),
    case("ai-chat-still-error", "chat", "Вам отвечает бот", ("ai_mention", E)),
    # --- promise ---
    case("promise-guarantee", "review", "Гарантируем, товар прослужит долго", ("promise", E)),
    case(
        "promise-and-refund",
        "review",
        "Мы обязательно вернём деньги",
        ("promise", E),
        ("unsolicited_refund", E),
    ),
    case(
        "promise-yo-e-solicited",
        "review",
        "Мы обязательно вернем деньги",
        ("promise", E),
        customer="Пришёл брак, хочу вернуть деньги",
    ),
    case("promise-100", "review", "Качество на 100%!", ("promise", E)),
    case("promise-not-composition", "question", "Состав: 100% хлопок"),
    case("promise-repeat", "review", "Такое больше не повторится", ("promise", E)),
    case("promise-never-yo", "review", "Куртка никогда не порвётся", ("promise", E)),
    case("promise-never-e", "question", "Куртка никогда не порвется", ("promise", E)),
    case("promise-not-advice", "question", "Никогда не стирайте в горячей воде"),
    case("promise-not-warranty", "question", "Гарантия на товар 12 месяцев"),
    case("promise-obeshchaem", "review", "Обещаем исправиться", ("promise", E)),
    case("promise-chat-warn", "chat", "Гарантируем доставку завтра", ("promise", W)),
    # --- blame ---
    case("blame-sami", "review", "Вы сами виноваты", ("blame", E)),
    case("blame-upper", "question", "ВЫ САМИ ВИНОВАТЫ", ("blame", E)),
    case("blame-vinovaty", "review", "Вы виноваты, а не мы", ("blame", E)),
    case("blame-vinovata", "review", "Покупательница сама виновата", ("blame", E)),
    case("blame-vinovat", "review", "Вы виноват, не продавец", ("blame", E)),
    case("blame-not-own-fault", "review", "Мы сами виноваты, простите"),
    case("blame-not-own-fault-i", "review", "Мы и сами виноваты, простите"),
    case("blame-misuse", "review", "Вы неправильно использовали прибор", ("blame", E)),
    case("blame-read", "review", "Надо было читать описание", ("blame", E)),
    case("blame-your-fault", "review", "Это ваша вина", ("blame", E)),
    case("blame-po-vine", "question", "Испорчено по вашей вине", ("blame", E)),
    case("blame-chat-warn", "chat", "Вы сами виноваты", ("blame", W)),
    # --- dismissive ---
    case("dismiss-problem", "review", "Это не наша проблема", ("dismissive", E)),
    case("dismiss-help", "question", "Увы, ничем не можем помочь", ("dismissive", E)),
    case("dismiss-help-order", "review", "Ничем вам помочь не можем", ("dismissive", E)),
    case("dismiss-go", "review", "Обращайтесь куда хотите", ("dismissive", E)),
    case("dismiss-concern", "review", "Нас это не касается", ("dismissive", E)),
    case("dismiss-dont-care", "review", "Нам всё равно", ("dismissive", E)),
    case("dismiss-chat-warn", "chat", "Это не наша проблема", ("dismissive", W)),
    case("dismiss-not-sorry", "review", "Нам жаль. Поможем разобраться!"),
    # --- unsolicited_refund ---
    case(
        "refund-unsolicited-review",
        "review",
        "Вы можете оформить возврат в личном кабинете",
        ("unsolicited_refund", E),
        customer="Отличный товар, всё понравилось",
    ),
    case(
        "refund-solicited-return",
        "review",
        "Вы можете оформить возврат в личном кабинете",
        customer="Хочу оформить возврат",
    ),
    case(
        "refund-no-customer-text",
        "review",
        "Компенсируем стоимость доставки",
        ("unsolicited_refund", E),
    ),
    case(
        "refund-solicited-defect",
        "review",
        "Вернём деньги в течение 10 дней",
        customer="Пришёл брак",
    ),
    case(
        "refund-solicited-defekt",
        "review",
        "Оформите возврат, разберёмся",
        customer="Товар с дефектом",
    ),
    case(
        "refund-unsolicited-question",
        "question",
        "Возврат возможен в течение 14 дней",
        ("unsolicited_refund", E),
        customer="Какой размер выбрать на рост 170?",
    ),
    case(
        "refund-solicited-question",
        "question",
        "Возврат возможен в течение 14 дней",
        customer="Можно ли вернуть, если не подойдёт?",
    ),
    case(
        "refund-unsolicited-chat-warn",
        "chat",
        "Можем оформить возврат",
        ("unsolicited_refund", W),
        customer="Когда доставка?",
    ),
    case("refund-exchange", "review", "Можем обменять на другой размер", ("unsolicited_refund", E)),
    case("refund-solicited-money", "chat", "Можем оформить возврат", customer="Верните деньги!"),
    case(
        "refund-not-come-back", "review", "Возвращайтесь к нам за покупками!", customer="Всё супер"
    ),
    # --- length limits, exactly at the limit and one over ---
    case("len-review-5000", "review", _text(5000)),
    case("len-review-5001", "review", _text(5001), ("too_long", E)),
    case("len-question-5000", "question", _text(5000)),
    case("len-question-5001", "question", _text(5001), ("too_long", E)),
    case("len-chat-1000", "chat", _text(1000)),
    case("len-chat-1001", "chat", _text(1001), ("too_long", E)),
    case("len-review-1", "review", "Д", ("too_short", E)),
    case("len-review-1-padded", "review", " Д ", ("too_short", E)),
    case("len-review-2", "review", "Да"),
    case("len-question-1", "question", "Д", ("too_short", E)),
    case("len-question-2", "question", "Да"),
    case("len-chat-1", "chat", "Д"),
    # --- several findings in one text ---
    case(
        "multi-review-strict",
        "review",
        "Ответил бот: гарантируем, что вы сами виноваты и это не наша проблема. Оформите возврат.",
        ("ai_mention", E),
        ("blame", E),
        ("dismissive", E),
        ("promise", E),
        ("unsolicited_refund", E),
    ),
    case(
        "multi-chat-relaxed",
        "chat",
        "Ответил бот: гарантируем, что вы сами виноваты и это не наша проблема. Оформите возврат.",
        ("ai_mention", E),
        ("blame", W),
        ("dismissive", W),
        ("promise", W),
        ("unsolicited_refund", W),
    ),
    case(
        "multi-chat-too-long-and-ai",
        "chat",
        "Ответил бот. " + _text(1000),
        ("ai_mention", E),
        ("too_long", E),
    ),
]


@pytest.mark.parametrize(("text", "channel", "customer_text", "expected"), CASES)
def test_check(
    text: str, channel: Channel, customer_text: str | None, expected: list[tuple[str, str]]
) -> None:
    assert _codes(guardrails.check(text, channel, customer_text=customer_text)) == expected


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("text", [None, "", "   \n\t "], ids=["none", "blank", "whitespace"])
def test_empty_text_is_an_error_on_every_channel(text: str | None, channel: Channel) -> None:
    assert _codes(guardrails.check(text, channel)) == [("empty", E)]


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize(
    "text",
    ["\u200b\u200d\u2060", "\ufeff \u00ad", "\u3164\u3164", "...", "—!?", " « » "],
    ids=["zero-width", "bom-soft-hyphen", "hangul-filler", "dots", "punctuation", "quotes"],
)
def test_text_empty_after_normalisation_is_refused_on_every_channel(
    text: str, channel: Channel
) -> None:
    assert _codes(guardrails.check(text, channel)) == [("empty", E)]


@pytest.mark.parametrize(
    ("channel", "expected"),
    [("review", [("empty", E)]), ("question", [("empty", E)]), ("chat", [])],
)
def test_emoji_alone_is_no_public_answer_but_may_be_a_chat_message(
    channel: Channel, expected: list[tuple[str, str]]
) -> None:
    assert _codes(guardrails.check("👍🙏", channel)) == expected


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("control", sorted(guardrails.engine.BIDI_CONTROLS))
def test_bidirectional_controls_are_refused_not_stripped(control: str, channel: Channel) -> None:
    text = f"Спасибо за отзыв! {control}Ждём вас снова"
    findings = guardrails.check(text, channel)
    assert _codes(findings) == [("bidi_control", E)]
    assert findings[0].match == control
    assert f"U+{ord(control):04X}" in findings[0].message


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("text", GOOD_REPLIES, ids=["thanks", "sizing", "apology"])
def test_polite_replies_have_no_findings(text: str, channel: Channel) -> None:
    assert guardrails.check(text, channel, customer_text="Куртка не подошла по размеру") == []


@pytest.mark.parametrize(
    ("text", "code", "match"),
    [
        ("Это ответил наш Чат-Бот.", "ai_mention", "Чат-Бот"),
        ("Обязательно вернём деньги!", "promise", "Обязательно вернём"),
        ("Обязательно вернём деньги!", "unsolicited_refund", "вернём деньги"),
    ],
)
def test_match_is_the_original_fragment(text: str, code: str, match: str) -> None:
    found = {f.code: f.match for f in guardrails.check(text, "review")}
    assert found[code] == match


@pytest.mark.parametrize("intent", ["return_refund", "defect_quality"])
def test_the_items_intent_can_solicit_a_refund_offer_its_last_words_do_not(intent: str) -> None:
    text = "Товар с браком можно вернуть через личный кабинет Wildberries."
    customer = "Спасибо за ответ!"  # a chat's last message; the defect was earlier
    assert _codes(guardrails.check(text, "review", customer_text=customer)) == [
        ("unsolicited_refund", E)
    ]
    assert guardrails.check(text, "review", customer_text=customer, intent=intent) == []
    assert _codes(guardrails.check(text, "review", customer_text=customer, intent="other")) == [
        ("unsolicited_refund", E)
    ]


def test_blocking_keeps_only_errors() -> None:
    findings = guardrails.check("Бот тут. Вы сами виноваты", "chat")
    assert [f.code for f in guardrails.blocking(findings)] == ["ai_mention"]
    assert guardrails.blocking(guardrails.check("Вы сами виноваты", "chat")) == []
    assert guardrails.blocking([]) == []


def _docstring_table() -> dict[str, tuple[str, str]]:
    """finding → (public severity, chat severity) as the rules' docstring states them."""
    table: dict[str, tuple[str, str]] = {}
    for line in (rules.__doc__ or "").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"error|warning", cells[1]):
            for code in re.findall(r"[a-z_]+", cells[0]):
                table[code] = (cells[1], cells[2])
    return table


def test_the_docstring_table_is_the_code() -> None:
    table = _docstring_table()
    for channel in get_args(Channel):
        column = 1 if channel == "chat" else 0
        for code, severity in rules.SEVERITIES[channel].items():
            assert table[code][column] == severity, (code, channel)
    wording = rules.SEVERITIES["review"]
    structural = {code: row for code, row in table.items() if code not in wording}
    assert structural == {
        "bidi_control": (E, E),
        "empty": (E, E),
        "too_long": (E, E),
        "too_short": (E, "–"),
    }
    assert rules.LIMITS["chat"].min_length == 1  # "–": a one-character chat message is fine
    assert {rule.code for rule in rules.RULES} | {"unsolicited_refund"} == set(
        rules.SEVERITIES["review"]
    )


@pytest.mark.parametrize(
    ("channel", "limit"), [("review", 5000), ("question", 5000), ("chat", 1000)]
)
def test_max_length(channel: Channel, limit: int) -> None:
    assert guardrails.max_length(channel) == limit


def test_findings_are_json_friendly() -> None:
    finding = guardrails.check("Ответил бот", "review")[0]
    assert json.loads(json.dumps(dataclasses.asdict(finding))) == {
        "code": "ai_mention",
        "severity": "error",
        "message": finding.message,
        "match": "бот",
    }


@pytest.mark.parametrize(
    ("text", "refund_solicited", "quotable"),
    [
        ("Лёгкие и мягкие", False, True),
        ("Гарантия 2 года", False, False),  # our promise once we quote it
        ("Робот-пылесос", False, False),
        ("Заказ 123456789 пришёл вовремя", False, False),  # an order number
        ("Пришёл заказ №5", False, False),
        ("Ответил бот поддержки", False, False),  # a wording rule
        ("Оформили возврат без проблем", False, False),  # refund talk, not asked for …
        ("Оформили возврат без проблем", True, True),  # … or asked for
    ],
)
def test_quotable_is_the_wording_rules_and_more(
    text: str, refund_solicited: bool, quotable: bool
) -> None:
    assert guardrails.quotable(text, refund_solicited=refund_solicited) is quotable
