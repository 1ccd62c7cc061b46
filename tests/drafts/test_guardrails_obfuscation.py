"""The guardrails against what a seller (or a model) would write to get past them.

For each category: written positives; variants produced mechanically from every positive
(look-alike letters, digits for letters and letters for digits, invisible characters, fullwidth
forms, mixed case, combining marks and, for the stems that allow it, letters split by spaces or
dots), each of which must still be flagged; and near-misses, ordinary seller replies that must
pass, with the variants that do not change what a text says. `test_counts` prints the tally per
category (run with -s).
"""

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from app.drafts import guardrails
from app.drafts.guardrails import Channel

RETURN_REQUEST = "Не подошёл размер, хочу оформить возврат и вернуть деньги"
SIZE_QUESTION = "Какой размер взять на рост 170?"


@dataclass(frozen=True)
class Positive:
    code: str
    text: str
    channel: Channel = "review"
    spaced: bool = False  # the flagged word is a stem whose letters may be split
    customer: str | None = SIZE_QUESTION


def _p(code: str, *texts: str, **kw: object) -> list[Positive]:
    return [Positive(code, text, **kw) for text in texts]  # type: ignore[arg-type]


POSITIVES: list[Positive] = [
    *_p(
        "contacts",
        "Позвоните нам: +7 (900) 123-45-67",
        "Наш номер 8 900 123 45 67, звоните!",
        "Пишите на 89001234567 в любое время",
        "Телефон магазина: 8-800-555-35-35",
        "Для связи: +375 29 123-45-67",
        "Звоните по будням 495 123-45-67",
        "Городской номер 123-45-67",
        "Номер по цифрам: 8 9 0 0 1 2 3 4 5 6 7",
        "Напишите нам на shop@mail.ru",
        "Почта: ivan.petrov (at) gmail (dot) com",
        "Наш магазин lumi-shop.ru",
        "Подробнее на https://example.com/sale",
        "Заходите на www.lumi.ru",
        "Канал t.me/lumi_shop",
        "Ссылка на акцию: bit.ly/abc123",
        "Сайт магазина shop . ru",
        "Пишите нам @lumi_shop",
        "Мы есть в тг",
        "Подписывайтесь на нашу группу вк",
        "Пишите в лс, ответим быстрее",
        "Напишите в личку",
        "Пишите в директ",
        "Напишите нам в мессенджер Max",
        "Оставьте ваш номер телефона, мы перезвоним",
        "Свяжитесь с нами напрямую",
    ),
    *_p(
        "contacts",
        "Пишите в Telegram",
        "Напишите нам в телеграм",
        "Пишите в WhatsApp",
        "Напишите на ватсап",
        "Мы во ВКонтакте",
        "Смотрите наш Instagram",
        "Пишите в вайбер",
        "Обзор есть на ютубе",
        spaced=True,
    ),
    *_p(
        "rating_solicitation",
        "Пожалуйста, измените оценку",
        "Просим вас удалить отзыв",
        "Поднимите, пожалуйста, рейтинг",
        "Поставьте нам 5 звёзд",
        "Поставьте пятёрку, пожалуйста",
        "Оставьте положительный отзыв",
        "Будем благодарны за 5 звёзд",
        "Дарим скидку 10% за отзыв",
        "За положительный отзыв — промокод на следующую покупку",
        "Пришлём подарок, если исправите оценку",
        "Вернём 200 рублей за 5 звёзд",
        "Кэшбэк в обмен на отзыв",
        "Отзыв удалите, пожалуйста",
        "Может быть, пересмотрите оценку?",
        "Оцените нас на 5",
        "Отредактируйте отзыв, когда всё решится",
        "Купон на скидку за изменение отзыва",
    ),
    *_p(
        "off_platform_money",
        "Вернём деньги на карту",
        "Переведём вам деньги на карту Сбербанка",
        "Вернём деньги напрямую",
        "Можем перевести стоимость по номеру телефона",
        "Оплатите напрямую, без комиссии",
        "Пришлите номер карты",
        "Скиньте данные вашей банковской карты",
        "Рассчитаемся переводом по СБП",
        "Компенсируем стоимость переводом на карту",
        "Купите в обход маркетплейса, так дешевле",
        "Напишите реквизиты, мы всё решим",
        "Телефон для перевода укажите в чате",
        "Вернём деньги сами, не оформляйте возврат",
        "Скиньте деньги на карту, отправим сразу",
        "Назовите CVV с обратной стороны",
        customer=RETURN_REQUEST,
    ),
    *_p(
        "ai_mention",
        "Ответ подготовлен автоматически",
        "Этот ответ сформирован автоматически",
        "Это автоматический ответ",
        "Сообщение отправлено автоматически",
        "Вам отвечает виртуальный помощник",
        "Ответил наш бот",
        "Ответ сгенерирован",
        "Ответ подготовил ИИ",
        "Искусственный интеллект изучил отзыв",
        "Я автоответчик магазина",
    ),
    *_p("ai_mention", "Текст написала нейросеть", "Спасибо, ответ от ChatGPT", spaced=True),
    *_p(
        "promise",
        "Гарантируем, товар прослужит долго",
        "Качество на 100%!",
        "Такое больше не повторится",
        "Обещаем исправиться",
        "Куртка никогда не порвётся",
    ),
    *_p(
        "blame",
        "Вы сами виноваты",
        "Вы неправильно использовали прибор",
        "Надо было читать описание",
        "Это ваша вина",
        "Испорчено по вашей вине",
    ),
    *_p(
        "dismissive",
        "Это не наша проблема",
        "Увы, ничем не можем помочь",
        "Обращайтесь куда хотите",
        "Нас это не касается",
        "Нам всё равно",
    ),
    *_p(
        "unsolicited_refund",
        "Вы можете оформить возврат в личном кабинете",
        "Компенсируем стоимость доставки",
        "Можем обменять на другой размер",
        "Если не подойдёт, его можно вернуть",
    ),
]


@dataclass(frozen=True)
class NearMiss:
    text: str
    channel: Channel = "review"
    customer: str | None = SIZE_QUESTION


NEAR_MISSES = [
    NearMiss("Здравствуйте! Мы работаем без выходных."),
    NearMiss("Рады, что подработка курьером у вас сложилась, а заработок вырос!"),
    NearMiss("Ботинки маломерят, берите на размер больше."),
    NearMiss("Крем с ботокс-эффектом, подходит для сухой кожи."),
    NearMiss("Робот-пылесос заряжается 4 часа."),
    NearMiss("Вот ответ на ваш вопрос: модель маломерит."),
    NearMiss("ВОТ ТАК И ЗАДУМАНО: модель свободного кроя."),
    NearMiss("Спасибо за 5 звёзд!"),
    NearMiss("Благодарим за пять звёзд и тёплый отзыв!"),
    NearMiss("Спасибо за высокую оценку, нам очень приятно!"),
    NearMiss("Спасибо за отзыв, скидки на новую коллекцию действуют до пятницы."),
    NearMiss("Будем рады видеть вас снова!"),
    NearMiss("Будем рады вашему отзыву после использования."),
    NearMiss("Ваш отзыв поможет нам стать лучше."),
    NearMiss("Мы исправим описание в карточке, спасибо за отзыв."),
    NearMiss("Отзыв передали производителю, он проверит партию."),
    NearMiss("Промокоды и скидки Wildberries действуют на все товары."),
    NearMiss("Размеры 42-44 в наличии, 46 ожидаем.", "question"),
    NearMiss("Размерная сетка: 36 38 40 42 44 46.", "question"),
    NearMiss("Цена 1 990 ₽, по акции 1 490 ₽.", "question"),
    NearMiss("Состав: 100% хлопок.", "question"),
    NearMiss("Поступление ожидаем 12.03.2026 к 10:00.", "question"),
    NearMiss("Артикул 146829301, размер 48.", "question"),
    NearMiss("Штрихкод на коробке: 4601234567890.", "question"),
    NearMiss("Мощность 65 Вт, заряжает MacBook Air по USB-C.", "question"),
    NearMiss("Подходит для iPhone 13 и Samsung Galaxy A52.", "question"),
    NearMiss("Чехол подходит на телефон с экраном 6,1 дюйма.", "question"),
    NearMiss("Наш телефон оснащён NFC и заряжается за час.", "question"),
    NearMiss("Курьер отправит уведомление на телефон перед доставкой.", "question"),
    NearMiss("Поставьте 5 минут на таймере, и чай заварится.", "question"),
    NearMiss("Телефон заряжается за час.", "question"),
    NearMiss("Ткань плотная, 220 г/м², рост модели 170 см.", "question"),
    NearMiss("В комплекте кабель 1.5 м, версия прошивки 2.0.", "question"),
    NearMiss("Т.е. размер соответствует таблице, и т.д.", "question"),
    NearMiss("Втулка входит в комплект.", "question"),
    NearMiss("Вкус нежный, упаковка целая."),
    NearMiss("Отгрузка на склад в пятницу, отгрузим всё вовремя.", "question"),
    NearMiss("Инструкция на русском языке вложена в коробку.", "question"),
    NearMiss("Максимальная нагрузка 120 кг.", "question"),
    NearMiss("Гарантия на товар 12 месяцев.", "question"),
    NearMiss("Чайник выключается автоматически, когда вода закипит.", "question"),
    NearMiss("Настройки сохраняются автоматически.", "question"),
    NearMiss("Перевод инструкции на русский язык вложен в коробку.", "question"),
    NearMiss("Товар можно оплатить картой при оформлении заказа.", "question"),
    NearMiss("Контакты производителя указаны на упаковке.", "question"),
    NearMiss("Lumi Run Pro — лёгкие кроссовки для бега.", "question"),
    NearMiss("Время работы склада: с 9 до 18, заказ будет завтра до 18:00.", "question"),
    NearMiss("8 марта поздравляем всех покупательниц!"),
    NearMiss("Напишите нам в чат с продавцом на Wildberries — разберёмся."),
    NearMiss("Здравствуйте, Макс! Спасибо за отзыв."),
    NearMiss("С уважением, команда Lumi."),
    NearMiss(
        "Оформите возврат в разделе «Покупки» личного кабинета Wildberries: деньги вернутся "
        "на карту, с которой вы оплачивали заказ, после проверки.",
        customer=RETURN_REQUEST,
    ),
    NearMiss("Вернуть товар можно через личный кабинет Wildberries.", customer=RETURN_REQUEST),
    NearMiss(
        "Возврат оформляется в приложении, деньги придут на способ оплаты.",
        "chat",
        customer=RETURN_REQUEST,
    ),
    NearMiss("Отправим замену на склад в течение двух дней.", "chat"),
    NearMiss("Пришлите, пожалуйста, фото бирки сюда в чат.", "chat"),
    NearMiss("Спасибо! 👍", "chat"),
    NearMiss("👍", "chat"),
]

# --- the variant generator ------------------------------------------------------------------

_TWINS = dict(zip("аеорсхукмтвнАЕОРСХУКМТВН", "aeopcxykmtbhAEOPCXYKMTBH", strict=True))
_TWINS |= {latin: cyrillic for cyrillic, latin in _TWINS.items()}
_DIGIT_TWINS = {"о": "0", "О": "0", "o": "0", "O": "0", "з": "3", "З": "3", "б": "6", "Б": "6"}
_INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u3164")
_MARKS = ("\u0301", "\u0336", "\u0308")


def _homoglyphs(text: str, parity: int) -> str:
    """Every other look-alike letter swapped for its twin in the other script."""
    out, seen = [], 0
    for char in text:
        if char in _TWINS:
            seen += 1
            if seen % 2 == parity:
                char = _TWINS[char]
        out.append(char)
    return "".join(out)


def _digits(text: str) -> str:
    return "".join(_DIGIT_TWINS.get(c, c) for c in text)


def _zero_width(text: str) -> str:
    return "".join(c + _INVISIBLE[i % len(_INVISIBLE)] for i, c in enumerate(text))


def _fullwidth(text: str) -> str:
    return "".join(
        "\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text
    )


def _mixed_case(text: str) -> str:
    return "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(text))


def _combining(text: str) -> str:
    return "".join(c + _MARKS[i % len(_MARKS)] if c.isalpha() else c for i, c in enumerate(text))


# What a text says is unchanged by these: near-misses must pass them too.
RENDERING: dict[str, Callable[[str], str]] = {
    "zero_width": _zero_width,
    "fullwidth": _fullwidth,
    "mixed_case": _mixed_case,
    "combining": _combining,
}
OBFUSCATIONS: dict[str, Callable[[str], str]] = {
    **RENDERING,
    "homoglyphs_odd": lambda t: _homoglyphs(t, 1),
    "homoglyphs_even": lambda t: _homoglyphs(t, 0),
    "digits": _digits,
    "letter_zeros": lambda t: t.replace("0", "О"),
}


def _flagged_fragment(p: Positive) -> str:
    findings = guardrails.check(p.text, p.channel, customer_text=p.customer)
    return next(f.match for f in findings if f.code == p.code and f.match)


def _split(p: Positive, separator: str) -> str:
    """The flagged word with its letters split by `separator`."""
    fragment = _flagged_fragment(p)
    return p.text.replace(fragment, separator.join(fragment), 1)


def variants(p: Positive) -> dict[str, str]:
    """The positive's obfuscated variants by name (those that change the text)."""
    found = {name: transform(p.text) for name, transform in OBFUSCATIONS.items()}
    if p.spaced:
        found["split_spaces"] = _split(p, " ")
        found["split_dots"] = _split(p, ".")
    return {name: text for name, text in found.items() if text != p.text}


def _codes(text: str, channel: Channel, customer: str | None) -> set[str]:
    return {f.code for f in guardrails.check(text, channel, customer_text=customer)}


# --- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("p", POSITIVES, ids=lambda p: f"{p.code}:{p.text[:40]}")
def test_positives_and_their_variants_are_flagged(p: Positive) -> None:
    assert p.code in _codes(p.text, p.channel, p.customer), p.text
    for name, text in variants(p).items():
        assert p.code in _codes(text, p.channel, p.customer), (name, text)


@pytest.mark.parametrize("n", NEAR_MISSES, ids=lambda n: n.text[:40])
def test_near_misses_pass_however_they_are_rendered(n: NearMiss) -> None:
    assert guardrails.check(n.text, n.channel, customer_text=n.customer) == []
    for name, transform in RENDERING.items():
        text = transform(n.text)
        assert guardrails.check(text, n.channel, customer_text=n.customer) == [], (name, text)


MARKETPLACE_RULES = {"contacts", "rating_solicitation", "off_platform_money"}


@pytest.mark.parametrize("p", [p for p in POSITIVES if p.code in MARKETPLACE_RULES])
def test_marketplace_rules_block_on_every_channel(p: Positive) -> None:
    for channel in ("review", "question", "chat"):
        findings = guardrails.check(p.text, channel, customer_text=p.customer)
        assert (p.code, "error") in {(f.code, f.severity) for f in findings}, channel


def _insert_invisible(text: str, rnd: random.Random) -> str:
    chars = list(text)
    for _ in range(rnd.randint(1, 6)):
        chars.insert(rnd.randint(0, len(chars)), rnd.choice(_INVISIBLE))
    return "".join(chars)


def _visible(text: str | None) -> str | None:
    return None if text is None else "".join(c for c in text if c not in _INVISIBLE)


def test_invisible_characters_anywhere_never_change_the_findings() -> None:
    """A property over every written text and 20 random insertions each (seeded)."""
    rnd = random.Random(13)
    texts = [(p.text, p.channel, p.customer) for p in POSITIVES]
    texts += [(n.text, n.channel, n.customer) for n in NEAR_MISSES]
    for text, channel, customer in texts:
        expected = guardrails.check(text, channel, customer_text=customer)
        for _ in range(20):
            noisy = _insert_invisible(text, rnd)
            found = guardrails.check(noisy, channel, customer_text=customer)
            assert [(f.code, f.severity, _visible(f.match)) for f in found] == [
                (f.code, f.severity, f.match) for f in expected
            ], noisy


def test_a_flagged_fragment_is_quoted_from_the_original_text() -> None:
    findings = guardrails.check("Пишите в Т е л е г р а м", "review")
    assert [f.match for f in findings] == ["Т е л е г р а м"]
    findings = guardrails.check("Пишите в Теле\u200bграм", "review")
    assert [f.match for f in findings] == ["Теле\u200bграм"]
    findings = guardrails.check("Звоните ＋７ ９００ １２３－４５－６７", "review")
    assert [f.match for f in findings] == ["＋７ ９００ １２３－４５－６７"]
    obfuscated = guardrails.check("Ответил б\u0301о\u0301т", "review")
    assert [f.match for f in obfuscated] == ["б\u0301о\u0301т"]


def test_counts() -> None:
    """The tally the closing note quotes: per category, cases tried, flagged and passed."""
    tried: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    for p in POSITIVES:
        for text in (p.text, *variants(p).values()):
            tried[p.code] += 1
            flagged[p.code] += p.code in _codes(text, p.channel, p.customer)
    renderings: list[Callable[[str], str]] = [str, *RENDERING.values()]
    near = [(n, render(n.text)) for n in NEAR_MISSES for render in renderings]
    passed = sum(not guardrails.check(t, n.channel, customer_text=n.customer) for n, t in near)
    print("\ncategory             tried  flagged")
    for code in tried:
        print(f"{code:20} {tried[code]:5}  {flagged[code]:7}")
    print(f"{'near-misses':20} {len(near):5}  passed {passed}")
    print(f"{'total':20} {sum(tried.values()) + len(near):5}")
    assert flagged == tried
    assert passed == len(near)
    assert all(tried[code] >= 30 for code in tried)
    assert sum(tried.values()) + len(near) >= 200
