import os
import re
import subprocess
import sys
from collections.abc import Sequence
from itertools import product

import pytest

from app.drafts import guardrails
from app.drafts.providers import MAX_LENGTH, Channel, DraftRequest, PreviousReply, first_name
from app.drafts.providers.offline import OfflineProvider, _fit, _Part
from app.interactions import classify

offline = OfflineProvider()

# Realistic customer texts: the guardrails decide whether a refund was asked for from the text.
REVIEW_TEXTS = {
    "defect_quality": "Через неделю отклеилась подошва, явный брак",
    "return_refund": "Не подошли, хочу вернуть деньги",
    "sizing_fit": "Маломерят, жмут в носке",
    "availability_delivery": "Доставка заняла две недели",
    "spec_compatibility": "Материал подошвы не такой, как в характеристиках",
    "pre_purchase": "Посоветуйте, стоит ли брать на зиму",
    "other": "Ожидала немного другого, но в целом носить можно",
}
QUESTION_TEXTS = {
    "defect_quality": "Не линяет ли после стирки?",
    "return_refund": "Можно ли оформить возврат, если не подойдут?",
    "sizing_fit": "Какой размер брать при длине стопы 26 см?",
    "availability_delivery": "Когда будет в наличии 42 размер?",
    "spec_compatibility": "Какой материал подошвы?",
    "pre_purchase": "Стоит ли брать для бега по асфальту?",
    "other": "Здравствуйте, а цвет как на фото?",
}
CHAT_TEXTS = {
    "defect_quality": "Добрый день, пришли кроссовки с браком, шов разошёлся",
    "return_refund": "Как оформить возврат? Не подошли",
    "sizing_fit": "Подскажите, какой размер взять на стопу 26 см",
    "availability_delivery": "Когда привезут 42 размер?",
    "spec_compatibility": "Подойдут ли для зала, какой состав верха?",
    "pre_purchase": "Стоит ли брать в подарок?",
    "other": "Здравствуйте!",
}
TEXTS: dict[str, dict[str, str]] = {
    "review": REVIEW_TEXTS,
    "question": QUESTION_TEXTS,
    "chat": CHAT_TEXTS,
}

SELLER_REPLIES = [
    PreviousReply(
        31,
        "review",
        "Здравствуйте, Ольга! Спасибо за отзыв. Модель немного маломерит, рекомендуем брать на "
        "полразмера больше. Спасибо, что выбираете Lumi!\nС уважением,\nкоманда Lumi",
        5,
    ),
    PreviousReply(
        32,
        "question",
        "Здравствуйте! Верх из дышащей сетки, материал подошвы — вспененный EVA. Спасибо, что "
        "выбираете Lumi! С уважением, команда Lumi",
        None,
    ),
    PreviousReply(
        33, "chat", "Иван, добрый день! Отправили фото бирки. Что-то ещё подсказать?", None
    ),
]


def request(
    channel: Channel = "review",
    text: str | None = None,
    intent: str | None = "other",
    rating: int | None = None,
    *,
    pros: str | None = None,
    cons: str | None = None,
    customer_name: str | None = "Анна",
    product_name: str | None = "Кроссовки беговые Lumi Run",
    previous_replies: Sequence[PreviousReply] = (),
    top_intents: Sequence[tuple[str, int]] = (),
) -> DraftRequest:
    return DraftRequest(
        channel=channel,
        text=text,
        pros=pros,
        cons=cons,
        rating=rating,
        intent=intent,
        customer_name=customer_name,
        product_name=product_name,
        previous_replies=previous_replies,
        top_intents=top_intents,
    )


def grid(**extra: object) -> list[DraftRequest]:
    """Every intent: reviews at each rating, questions and chats without one."""
    requests = [
        request("review", REVIEW_TEXTS[intent], intent, rating, **extra)  # type: ignore[arg-type]
        for intent, rating in product(classify.INTENTS, range(1, 6))
    ]
    for channel in ("question", "chat"):
        requests += [
            request(channel, TEXTS[channel][intent], intent, **extra)  # type: ignore[arg-type]
            for intent in classify.INTENTS
        ]
    return requests


GROUNDED = {
    "previous_replies": SELLER_REPLIES,
    "top_intents": [("sizing_fit", 14), ("defect_quality", 5), ("spec_compatibility", 4)],
}


def test_customer_texts_match_their_intents() -> None:
    for texts in TEXTS.values():
        for intent, text in texts.items():
            assert classify.classify_intent(text) == intent, text


@pytest.mark.parametrize("extra", [{}, GROUNDED], ids=["plain", "grounded"])
def test_every_intent_rating_and_channel_gets_its_own_text(extra: dict[str, object]) -> None:
    requests = grid(**extra)
    texts = [offline.compose(r).text for r in requests]
    assert len(set(texts)) == len(requests) == 7 * 5 + 7 + 7


@pytest.mark.parametrize("extra", [{}, GROUNDED], ids=["plain", "grounded"])
def test_no_banned_wording_and_no_unsolicited_refund(extra: dict[str, object]) -> None:
    for r in grid(**extra):
        draft = offline.compose(r)
        assert draft.provider == "offline"
        assert draft.model is None
        assert draft.fallback_reason is None
        assert len(draft.text) <= MAX_LENGTH[r.channel]
        # No finding at all: refund talk only where the customer's text asked for it.
        assert guardrails.check(draft.text, r.channel, customer_text=r.text) == [], draft.text


@pytest.mark.parametrize(
    ("customer_name", "greeting"),
    [
        ("Анна", "Здравствуйте, Анна!"),
        ("анна", "Здравствуйте, Анна!"),
        ("Анна К.", "Здравствуйте, Анна!"),
        ("АННА-МАРИЯ", "Здравствуйте, Анна-Мария!"),
    ],
)
def test_greets_by_first_name(customer_name: str, greeting: str) -> None:
    draft = offline.compose(request("review", "Отличные", rating=5, customer_name=customer_name))
    assert draft.text.startswith(greeting)


@pytest.mark.parametrize("customer_name", [None, "", "Покупатель", "user12345", "ИК", "   "])
def test_greets_neutrally_without_a_usable_name(customer_name: str | None) -> None:
    draft = offline.compose(request("review", "Отличные", rating=5, customer_name=customer_name))
    assert draft.text.startswith(("Здравствуйте!", "Добрый день!"))
    assert first_name(customer_name) is None


@pytest.mark.parametrize("intent", classify.INTENTS)
def test_chat_is_shorter_than_public_replies_and_asks_a_question(intent: str) -> None:
    chat = offline.compose(request("chat", CHAT_TEXTS[intent], intent)).text
    question = offline.compose(request("question", QUESTION_TEXTS[intent], intent)).text
    reviews = [offline.compose(request("review", REVIEW_TEXTS[intent], intent, r)) for r in (1, 5)]
    assert len(chat) < len(question)
    assert all(len(chat) < len(review.text) for review in reviews)
    assert chat.endswith("?")
    assert len(chat) <= 400


async def test_same_request_same_draft() -> None:
    first = request("review", "Маломерят", "sizing_fit", 2, **GROUNDED)  # type: ignore[arg-type]
    again = request(
        "review",
        "Маломерят",
        "sizing_fit",
        2,
        previous_replies=tuple(SELLER_REPLIES),  # a tuple instead of a list: same content
        top_intents=tuple(GROUNDED["top_intents"]),  # type: ignore[arg-type]
    )
    a, b, c = await offline.draft(first), await offline.draft(first), await offline.draft(again)
    assert a == b == c


@pytest.mark.multiprocess
def test_draft_does_not_depend_on_the_process_hash_seed() -> None:
    code = (
        "from app.drafts.providers.offline import OfflineProvider; "
        "from app.drafts.providers import DraftRequest; "
        "r = DraftRequest(channel='review', text='Брак', pros=None, cons=None, rating=1, "
        "intent='defect_quality', customer_name='Олег', product_name='Чайник', "
        "previous_replies=[], top_intents=[]); "
        "print(OfflineProvider().compose(r).text)"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": "."},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1
    assert outputs.pop().startswith("Здравствуйте, Олег!")


def test_variants_differ_between_customers() -> None:
    texts = {
        offline.compose(request("review", text, rating=5, customer_name=None)).text
        for text in ("Отличные", "Супер", "Всё понравилось", "Класс", "Рекомендую", "Хорошие")
    }
    assert len(texts) > 1


def test_five_stars_thank_and_mention_the_pros() -> None:
    draft = offline.compose(request("review", "Очень довольна", rating=5, pros="Лёгкие и мягкие"))
    assert "«Лёгкие и мягкие»" in draft.text
    assert re.search(r"спасибо|благодар", draft.text, re.IGNORECASE)


@pytest.mark.parametrize(
    "pros",
    [
        "Нет",
        "-",
        "Ответил бот поддержки быстро",
        "Гарантия 2 года",
        "Продавец на связи в вотсапе",
        "Скидку дали за отзыв",
    ],
)
def test_pros_that_say_nothing_or_are_unsafe_are_not_quoted(pros: str) -> None:
    draft = offline.compose(request("review", "Хорошо", rating=5, pros=pros))
    assert "«" + pros not in draft.text
    assert guardrails.check(draft.text, "review", customer_text="Хорошо") == []


@pytest.mark.parametrize("rating", [1, 2, 3])
def test_defect_apologizes_and_gives_a_next_step(rating: int) -> None:
    draft = offline.compose(
        request("review", REVIEW_TEXTS["defect_quality"], "defect_quality", rating)
    )
    assert re.search(r"извин|жаль|простите|сожале", draft.text, re.IGNORECASE)
    assert "«Покупки»" in draft.text
    assert "фото" in draft.text
    assert "контрол" in draft.text


def test_sizing_gives_sizing_advice() -> None:
    for channel in ("review", "question", "chat"):
        draft = offline.compose(request(channel, TEXTS[channel]["sizing_fit"], "sizing_fit", 3))
        assert re.search(r"таблиц|мерк|замер", draft.text), draft.text


def test_return_refund_explains_the_marketplace_return_process() -> None:
    draft = offline.compose(request("question", QUESTION_TEXTS["return_refund"], "return_refund"))
    assert "«Покупки»" in draft.text
    assert "пункт выдачи" in draft.text
    assert "Wildberries" in draft.text


def test_availability_and_specs_point_to_the_card() -> None:
    availability = offline.compose(
        request("question", QUESTION_TEXTS["availability_delivery"], "availability_delivery")
    )
    specs = offline.compose(
        request("question", QUESTION_TEXTS["spec_compatibility"], "spec_compatibility")
    )
    assert "карточке товара" in availability.text
    assert "избранное" in availability.text
    assert "доставк" in availability.text.lower()
    assert "характеристик" in specs.text.lower()
    assert "карточк" in specs.text


def test_public_replies_do_not_ask_the_customer_questions_but_chats_do() -> None:
    for r in grid():
        text = offline.compose(r).text
        assert text.endswith("?") == (r.channel == "chat"), text


def test_product_name_is_quoted_once() -> None:
    draft = offline.compose(
        request("question", QUESTION_TEXTS["pre_purchase"], "pre_purchase", customer_name=None)
    )
    assert draft.text.count("«Кроссовки беговые Lumi Run»") <= 1


def test_intent_is_classified_when_missing_and_unknown_intents_are_other() -> None:
    missing = offline.compose(request("review", "Пришёл брак, шов разошёлся", None, 1))
    assert "«Покупки»" in missing.text
    unknown = offline.compose(request("review", "Всё отлично", "no_such_intent", 5))
    assert guardrails.check(unknown.text, "review", customer_text="Всё отлично") == []


# --- grounding ------------------------------------------------------------------------------


def test_previous_replies_are_reused_and_listed_in_sources() -> None:
    r = request(
        "question",
        QUESTION_TEXTS["sizing_fit"],
        "sizing_fit",
        customer_name=None,
        previous_replies=SELLER_REPLIES,
    )
    draft = offline.compose(r)
    assert "Модель немного маломерит, рекомендуем брать на полразмера больше." in draft.text
    assert "Спасибо, что выбираете Lumi!" in draft.text
    assert draft.text.endswith("С уважением, команда Lumi")
    assert "Ольга" not in draft.text  # the earlier customer's greeting is never copied
    by_use = {s["use"]: s for s in draft.sources}
    assert by_use["intent_phrase"] == {
        "kind": "previous_reply",
        "interaction_id": 31,
        "channel": "review",
        "use": "intent_phrase",
        "text": "Модель немного маломерит, рекомендуем брать на полразмера больше.",
    }
    assert by_use["stock_phrase"]["seen_in"] == [31, 32]
    assert by_use["signature"]["interaction_id"] == 31
    assert by_use["signature"]["seen_in"] == [31, 32]
    assert all(s["kind"] == "previous_reply" for s in draft.sources)


def test_spec_question_reuses_the_sellers_fact_about_the_material() -> None:
    r = request(
        "question",
        QUESTION_TEXTS["spec_compatibility"],
        "spec_compatibility",
        previous_replies=SELLER_REPLIES,
    )
    draft = offline.compose(r)
    assert "материал подошвы — вспененный EVA" in draft.text
    assert {"use": "intent_phrase", "interaction_id": 32}.items() <= draft.sources[0].items()


def test_unrelated_previous_replies_change_nothing() -> None:
    unrelated = [PreviousReply(40, "review", "Здравствуйте! Спасибо за отзыв.", 4)]
    plain = offline.compose(request("review", REVIEW_TEXTS["defect_quality"], "defect_quality", 2))
    grounded = offline.compose(
        request(
            "review",
            REVIEW_TEXTS["defect_quality"],
            "defect_quality",
            2,
            previous_replies=unrelated,
        )
    )
    assert grounded == plain
    assert grounded.sources == []


def test_negative_reviews_keep_our_closing_but_take_the_signature() -> None:
    draft = offline.compose(
        request("review", REVIEW_TEXTS["other"], "other", 1, previous_replies=SELLER_REPLIES)
    )
    assert "Спасибо, что выбираете Lumi!" not in draft.text
    assert draft.text.endswith("С уважением, команда Lumi")
    assert [s["use"] for s in draft.sources] == ["signature"]


def test_chat_takes_no_signature_from_public_replies() -> None:
    draft = offline.compose(
        request("chat", CHAT_TEXTS["other"], "other", previous_replies=SELLER_REPLIES)
    )
    assert "С уважением" not in draft.text
    assert draft.sources == []


@pytest.mark.parametrize(
    "sentence",
    [
        "Модель маломерит, заказ 123456789 мы уже заменили на размер больше.",
        "Модель маломерит, ответ подготовил наш бот, берите на размер больше.",
        "Модель маломерит, гарантируем, что размер больше подойдёт идеально.",
        "Модель маломерит, вы сами неправильно выбрали размер по таблице.",
        "Модель маломерит, поэтому оформите возврат и закажите размер больше.",
        "Модель маломерит, напишите в т е л е г р а м, подберём размер больше.",
        "Модель маломерит, размер больше подберём по телефону 8 900 123-45-67.",
        "Модель маломерит, таблица размеров на lumi-shop.ru, берите больше.",
        "Модель маломерит, берите больше, а за отзыв дарим скидку на размер.",
        "Модель маломерит, разницу за размер больше вернём на карту.",
    ],
)
def test_unsafe_sentences_of_previous_replies_are_not_reused(sentence: str) -> None:
    replies = [PreviousReply(50, "review", f"Здравствуйте! {sentence}", 3)]
    draft = offline.compose(
        request("question", QUESTION_TEXTS["sizing_fit"], "sizing_fit", previous_replies=replies)
    )
    assert sentence not in draft.text
    assert draft.sources == []


def test_an_earlier_customers_name_before_a_reused_sentence_is_dropped() -> None:
    replies = [PreviousReply(70, "chat", "Иван, модель маломерит, берите на размер больше.", None)]
    draft = offline.compose(
        request("question", QUESTION_TEXTS["sizing_fit"], "sizing_fit", previous_replies=replies)
    )
    assert "Иван" not in draft.text
    assert "Модель маломерит, берите на размер больше." in draft.text
    assert draft.sources[0]["text"] == "Модель маломерит, берите на размер больше."


def test_stock_phrases_about_a_review_or_a_purchase_are_not_reused_in_question_answers() -> None:
    replies = [
        PreviousReply(i, "review", "Спасибо за отзыв! Спасибо за покупку, ждём вас снова!", 5)
        for i in (80, 81)
    ]
    question = offline.compose(
        request("question", QUESTION_TEXTS["other"], "other", previous_replies=replies)
    )
    assert "Спасибо за отзыв" not in question.text
    assert "Спасибо за покупку" not in question.text
    review = offline.compose(request("review", "Супер", rating=5, previous_replies=replies))
    assert "Спасибо за отзыв" not in review.text
    assert "Спасибо за покупку, ждём вас снова!" in review.text
    assert review.sources[0]["seen_in"] == [80, 81]


def test_a_signature_with_contact_details_is_not_reused() -> None:
    replies = [
        PreviousReply(60, "review", "Спасибо за отзыв!\nС уважением, менеджер +7 900 123-45-67", 5)
    ]
    draft = offline.compose(request("review", "Отлично", rating=5, previous_replies=replies))
    assert "+7" not in draft.text
    assert draft.sources == []


def test_typical_intents_add_a_line_and_a_source_when_on_topic() -> None:
    r = request(
        "review",
        REVIEW_TEXTS["sizing_fit"],
        "sizing_fit",
        2,
        top_intents=[("sizing_fit", 14), ("other", 40)],
    )
    draft = offline.compose(r)
    assert draft.sources == [
        {"kind": "top_intents", "intent": "sizing_fit", "count": 14, "use": "recurring_topic"}
    ]
    plain = offline.compose(request("review", REVIEW_TEXTS["sizing_fit"], "sizing_fit", 2))
    assert len(draft.text) > len(plain.text)


@pytest.mark.parametrize(
    "top_intents",
    [
        [("defect_quality", 9)],  # off topic for a sizing review
        [("sizing_fit", 2)],  # too rare to be typical
        [("other", 9), ("pre_purchase", 8), ("return_refund", 7), ("defect_quality", 6)],
        [("sizing_fit", 3), ("a", 9), ("b", 8), ("c", 7), ("d", 6)],  # unknown intents ignored
    ],
)
def test_typical_intents_that_do_not_apply_are_not_sources(
    top_intents: list[tuple[str, int]],
) -> None:
    plain = offline.compose(request("review", REVIEW_TEXTS["sizing_fit"], "sizing_fit", 2))
    r = request("review", REVIEW_TEXTS["sizing_fit"], "sizing_fit", 2, top_intents=top_intents)
    draft = offline.compose(r)
    if top_intents[0] == ("sizing_fit", 3):  # unknown ones skipped: sizing_fit is typical
        assert [s["intent"] for s in draft.sources] == ["sizing_fit"]
    else:
        assert draft == plain


def test_pre_purchase_questions_get_a_tip_from_the_products_top_intent() -> None:
    r = request(
        "question",
        QUESTION_TEXTS["pre_purchase"],
        "pre_purchase",
        top_intents=[("spec_compatibility", 6), ("sizing_fit", 4)],
    )
    draft = offline.compose(r)
    assert "«Характеристики»" in draft.text
    assert draft.sources == [
        {"kind": "top_intents", "intent": "spec_compatibility", "count": 6, "use": "tip"}
    ]


# --- limits ---------------------------------------------------------------------------------


def test_long_inputs_stay_within_the_marketplace_limits() -> None:
    long_fact = "Модель маломерит, " + "рекомендуем сверить длину стопы с таблицей, " * 5 + "ок."
    replies = [
        PreviousReply(i, "chat", f"Здравствуйте! {long_fact} С уважением, команда Lumi", None)
        for i in range(5)
    ]
    long = {
        "pros": "Очень удобные " * 200,
        "cons": "Жёсткие " * 200,
        "product_name": "Кроссовки " * 100,
        "previous_replies": replies,
        "top_intents": [("sizing_fit", 99)],
    }
    for r in grid(**long):
        draft = offline.compose(r)
        assert 2 <= len(draft.text) <= MAX_LENGTH[r.channel]
        assert "Кроссовки Кроссовки" not in draft.text  # an overlong product name is not quoted


def test_fit_drops_optional_parts_first_and_their_sources_with_them() -> None:
    source: dict[str, object] = {"kind": "previous_reply", "interaction_id": 1}
    parts = [
        _Part("Здравствуйте!"),
        _Part("А" * 50 + ".", optional=True, source=source),
        _Part("Подскажите, чем помочь?"),
    ]
    text, kept = _fit(parts, 40)
    assert text == "Здравствуйте! Подскажите, чем помочь?"
    assert all(p.source is None for p in kept)
    text, _ = _fit([_Part("Первое предложение. Второе предложение довольно длинное.")], 30)
    assert text == "Первое предложение."
