"""The guardrails' tables: what each rule looks for, and what a finding weighs on each channel.

| finding              | review, question (public) | chat (private) |
|----------------------|---------------------------|----------------|
| ai_mention           | error                     | error          |
| contacts             | error                     | error          |
| rating_solicitation  | error                     | error          |
| off_platform_money   | error                     | error          |
| promise              | error                     | warning        |
| blame                | error                     | warning        |
| dismissive           | error                     | warning        |
| unsolicited_refund   | error                     | warning        |
| bidi_control, empty  | error                     | error          |
| too_long             | error                     | error          |
| too_short (< 2)      | error                     | –              |

Public answers are read by every buyer and pass the marketplace's moderation, so every rule
blocks there. Chat keeps a deliberate subset of blocking rules: the four that the marketplace
punishes in chats as much as in public answers (a disclosed bot, contact details or links,
asking for a better or deleted review or paying for one, and money moved off the platform: the
usual ways a seller takes a buyer away from the marketplace or buys a rating, which the seller
rules forbid in every channel). Tone (promises, blame, dismissive wording) and a refund offer the
buyer did not ask for only warn in a chat: it is a private conversation the operator steers, and
there a refund may be the point.

An unsolicited refund offer blocks on public channels because every buyer reads it: it invites
refund requests for no reason and promises what only the marketplace's return process decides.
The offer is solicited when the item's intent (classified from all the customer wrote, pros,
cons and earlier chat messages included, or set by the operator) or the customer's text is
about a return, money or a defect (`REFUND_INTENTS`, intents of `app.interactions.classify`). A
solicited offer is allowed as long as the return stays on the marketplace: a direct transfer
(`off_platform_money`) blocks whatever the customer asked.

Patterns are regular expressions over the normalised text (`engine.py`: NFKC, case folded, "ё"
read as "е" and "й" as "и", invisible characters removed), written in lower case, Russian or
Latin, as the word is spelled (their "ё" and "й" are folded like the text's). Every letter they
spell also matches its look-alikes (`о` matches `o`, `0` and `ο`; a `0` matches `о`), so no
pattern lists obfuscated spellings. Most rules are whole-word
(`words()`): inflections are spelled out (`бот(?:а|у|ом…)?`, `нейросет\\w*`), so "работа",
"ботинки" or "втулка" never match "бот" or "вк". Stems of four letters or more that name a
contact channel are `spaced()`: up to three spaces or punctuation marks may split their letters
("т е л е г р а м", "w.h.a.t.s.a.p.p").

Known limits: numbers spelled in words ("восемь девятьсот…"), and a Latin word written entirely
in Cyrillic look-alikes ("вот" for "bot"), are not recognised; the second on purpose (see the
script guard in `engine.py`).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from app.connectors.base import Channel

Severity = Literal["warning", "error"]


def words(*alternatives: str) -> str:
    """The alternatives, each starting and ending at a word boundary."""
    return r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)"


def spaced(stem: str) -> str:
    """A stem of letters whose letters may be split by up to three spaces or punctuation marks."""
    assert stem.isalpha(), stem
    return r"[\W_]{0,3}".join(stem)


@dataclass(frozen=True, slots=True)
class Rule:
    """Text matching `pattern` is a finding `code`; several rules may share a code (a phone
    number and an e-mail address are both `contacts`), each with its own message."""

    code: str
    message: str
    pattern: str


# --- contacts ---------------------------------------------------------------------------------

_DIGIT = r"[\dо]"  # a digit, or the letter о (and its look-alikes) standing for a zero
_PHONE_SEP = r"[\s\-.]{0,2}"
# +7 900 123-45-67, 8 (900) 123 45 67, 89001234567, 900 123 45 67, (495) 123-45-67: an area or
# mobile code starting with 3, 4, 8 or 9, so sizes ("42-44"), prices and dates never fit.
_RU_PHONE = (
    rf"(?<![\w+])(?:(?:\+\s?7|8|7){_PHONE_SEP})?\(?[3489]{_DIGIT}{{2}}\)?{_PHONE_SEP}"
    rf"{_DIGIT}{{3}}{_PHONE_SEP}{_DIGIT}{{2}}{_PHONE_SEP}{_DIGIT}{{2}}(?!\w)"
)
# 8 9 0 0 1 2 3 4 5 6 7: every digit split off.
_SPELLED_PHONE = rf"(?<![\w+])(?:\+\s?)?[78](?:[\s\-.]{_DIGIT}){{10}}(?!\w)"
# +375 29 123-45-67, +44 20 7946 0958: a country code and six to thirteen more digits.
_INTERNATIONAL_PHONE = rf"(?<![\w+])\+\s?[1-9]\d{{0,2}}(?:[\s\-.()]{{0,2}}{_DIGIT}){{6,13}}(?!\w)"
# 123-45-67: a city number without its code (dashes only: "42-44-46" is sizes).
_CITY_PHONE = rf"(?<![\w\-+]){_DIGIT}{{3}}-{_DIGIT}{{2}}-{_DIGIT}{{2}}(?![\w\-])"

_AT = r"(?:\s?@\s?|\s?[(\[{]\s?(?:at|собака)\s?[)\]}]\s?|\s(?:at|собака)\s)"
_DOT = r"(?:\.|\s?[(\[]\s?(?:\.|dot|точка)\s?[)\]]\s?|\s(?:dot|точка)\s)"
# Top-level domains seen in contact spam; those that are no word of running text may also
# stand after a dot with spaces around it ("shop . ru").
_TLD = (
    r"(?:ru|рф|su|рус|com|net|org|info|biz|pro|io|me|ly|cc|co|gl|to|tv|app|dev|online|site"
    r"|store|shop|xyz|top|club|link|click|page|ua|by|kz|uz|de|uk|us|eu)"
)
_SPACED_DOT_TLD = r"(?:ru|рф|su|рус|com|net|org)"
_EMAIL = rf"(?<![\w.+\-])[\w.+\-]+{_AT}[\w\-]+(?:{_DOT}[\w\-]+)*{_DOT}{_TLD}(?![\w\-])"
_URL = r"(?<!\w)(?:h\s?t\s?t\s?p\s?s?|hxxps?)\s?:\s?/\s?/|(?<!\w)www\s?\.\s?\w"
_DOMAIN = (
    rf"(?<![\w.@\-])\w[\w\-]*(?:\.[\w\-]+)*(?:{_DOT}{_TLD}|\s\.\s?{_SPACED_DOT_TLD}"
    rf"|\.\s{_SPACED_DOT_TLD})(?![\w\-])"
)
_HANDLE = r"(?<![\w@])@\s?\w[\w.]{2,}"
_MESSENGERS = words(
    spaced("телеграм") + r"\w*",
    spaced("telegram") + r"\w*",
    r"(?:в|через)\s+телег(?:е|у)",  # slang; "телега" alone is also a cart
    r"тг|tg|тгк",
    spaced("ватсап") + r"\w*",
    spaced("вотсап") + r"\w*",
    spaced("вацап") + r"\w*",
    spaced("уотсап") + r"\w*",
    spaced("whatsap") + r"\w*",
    r"вк|vk",
    spaced("вконтакт") + r"\w*",
    spaced("vkontakt") + r"\w*",
    spaced("инстаграм") + r"\w*",
    spaced("instagram") + r"\w*",
    r"инст(?:а|у|е|ы|ой)|insta",
    spaced("вайбер") + r"\w*",
    spaced("viber") + r"\w*",
    spaced("фейсбук") + r"\w*",
    spaced("facebook") + r"\w*",
    spaced("тикток") + r"\w*",
    spaced("tiktok") + r"\w*",
    spaced("скайп") + r"\w*",
    spaced("skype") + r"\w*",
    spaced("дискорд") + r"\w*",
    spaced("discord") + r"\w*",
    spaced("ютуб") + r"\w*",
    spaced("youtube") + r"\w*",
    # Max, the messenger, only as a place to write: "Макс" is also a name.
    r"(?:в|во|через)\s+(?:мессенджер\w*\s+)?(?:max|макс)(?:е|а|у)?",
    r"мессенджер\w*\s+(?:max|макс)\w*",
    r"(?:в|через)\s+(?:\w+\s+)?мессенджер\w*",
)
_ASK_FOR = r"(?:оставьте|пришлите|напишите|сообщите|укажите|продиктуйте|скиньте|дайте)"
_OFF_PLATFORM_TALK = words(
    r"(?:в|во)\s+личк\w*",
    r"в\s+(?:лс|л/с|дм|dm|direct)",
    r"в\s+директ\w*",
    r"(?:в|через)\s+личн\w*\s+(?:сообщени|переписк)\w*",
    r"(?:позвоните|звоните|наберите|перезвоните)\s+(?:нам|мне|по)",
    r"(?:позвоним|перезвоним|наберём)\s+(?:вам|тебе)",
    r"по\s+телефону",
    rf"{_ASK_FOR}\s+(?:нам\s+|пожалуйста\s+)*(?:ваш\w*\s+|сво\w*\s+)?(?:номер\s+)?"
    r"(?:телефон\w*|почт\w*|e-?mail|имейл\w*|контакт\w*)",
    r"(?:на|в)\s+нашем\s+сайте",
    r"наш\w*\s+(?:сайт\w*|почт\w*|e-?mail|канал\w*)",
    r"(?:свяжитесь|свяжемся|связаться|напишите|пишите)\s+(?:с\s+нами\s+|нам\s+)?напрямую",
)

# --- rating solicitation ----------------------------------------------------------------------

_RATING = r"(?:отзыв|оценк|звезд|рейтинг)\w*"
_GAP = r"(?:[\s,]+\w+){0,2}?[\s,]+"  # up to two words between
# Asking the buyer to change their review: imperative, future "you" or infinitive.
_CHANGE_IMPERATIVE = (
    r"(?:измените|поменяйте|поменяете|исправьте|исправите|поднимите|поднимете|повысьте"
    r"|повысите|удалите|уберите|уберёте|отредактируйте|отредактируете|перепишите|перепишете"
    r"|пересмотрите|скорректируйте|скорректируете|обновите)"
)
_CHANGE = (
    rf"(?:{_CHANGE_IMPERATIVE}|изменить|поменять|исправить|поднять|повысить|удалить|убрать"
    r"|отредактировать|переписать|пересмотреть|скорректировать|обновить)"
)
_TOP_MARK = r"(?:5|пять|пятерк\w*|пятизвездочн\w*|высш\w*|максимальн\w*|высок\w*|отличн\w*)"
_GOOD_MARK = rf"(?:{_TOP_MARK}|хорош\w*|положительн\w*|добр\w*)"
_INCENTIVE = (
    r"(?:скидк|купон|промо-?код|промик|подар|бонус|кэшб[эе]к|кешб[эе]к|cash\s?back|кэш|сертификат"
    r"|вознагражд|балл|компенсац|возмещ|деньг|денег|рубл|бесплатн|презент|сюрприз)\w*"
)
# "за отзыв", "в обмен на 5 звезд"; not "спасибо за отзыв".
_FOR_RATING = (
    r"(?<!спасибо\s)(?<!спасибо\sвам\s)(?<!благодарим\s)(?<!благодарим\sвас\s)"
    r"(?<!благодарны\s)(?<!благодарю\s)(?<!признательны\s)"
    rf"(?:за|в\s+обмен\s+на)\s+(?:\w+\s+){{0,2}}?(?:5\s*)?(?:{_RATING}|★)"
)
_SAME_SENTENCE = r"[^.!?\n]{0,60}?"

# --- money off the platform -------------------------------------------------------------------

# We pay the buyer, or ask the buyer to pay us.
_WE_PAY = (
    r"(?:вернём|верну|переведём|переведу|перевести|переведите|перечислим|перечислю|перечислить"
    r"|перечислите|компенсируем|компенсирую|возместим|возмещу|выплатим|выплачу"
    # sending only with what is sent: "отправим уведомление на телефон" is no payment
    r"|(?:отправим|отправлю|отправьте|скинем|скину|скинуть|скиньте)(?:\s+\w+)?\s+"
    r"(?:деньги|средства|оплату|сумму|разницу|стоимост\w*|компенсаци\w*))"
)
_ACCOUNT = (
    r"(?:на|по)\s+(?:ваш\w*\s+|сво\w*\s+|любу\w*\s+|банковск\w*\s+|номер\w*\s+)*"
    r"(?:карт\w*|сч[её]т\w*|телефон\w*|номер\w*|кошел[её]к\w*|qiwi|киви|юмани|yoomoney|сбер\w*"
    r"|т-?банк\w*|тиньк\w*|реквизит\w*|сбп)"
)
_MONEY = (
    r"(?:верн|перевед|перевод|перечисл|компенс|возмест|выплат|оплат|рассчита|деньг|денег|средств)"
    r"\w*"
)
_MARKETPLACE = r"(?:wildberries|вайлдберриз|вб|wb|маркетплейс\w*|площадк\w*|платформ\w*)"

RULES: tuple[Rule, ...] = (
    Rule(
        "ai_mention",
        "Mentions AI, a bot or automated answering.",
        words(
            r"(?:чат-?)?бот(?:а|у|ом|е|ы|ов|ам|ами|ах)?",
            r"(?:chat)?bots?",
            r"ии",
            r"искусственн\w*\s+интеллект\w*",
            spaced("нейросет") + r"\w*",
            r"нейронк\w*",
            r"нейронн\w*\s+сет\w*",
            r"языков\w*\s+модел\w*",
            r"(?:chat\s?|чат\s?|yandex\s?|яндекс\s?)?gpt(?:-?\d\w*)?",
            spaced("chatgpt"),
            r"openai",
            r"gigachat|гигачат\w*",
            r"автоответ\w*",
            r"автоматическ\w*\s+(?:ответ|сообщени|рассылк)\w*",
            r"(?:ответ|сообщени)\w*\s+автоматическ\w*",
            r"(?:подготовлен|сгенерирован|написан)\w*\s+автоматически",
            r"автоматически\s+(?:подготовлен|сгенерирован|написан|сформирован|составлен)\w*",
            r"(?:ответ|сообщени|текст)\w*\s+(?:\w+\s+){0,2}?(?:сформирован|составлен|создан"
            r"|отправлен)\w*\s+автоматически",
            r"сгенерирова\w*",
            r"виртуальн\w*\s+(?:помощник|ассистент|консультант|оператор)\w*",
            r"без\s+участия\s+(?:человека|оператора|менеджера|сотрудника)",
            r"не\s+отвечайте\s+на\s+(?:это|данное)\s+сообщени\w*",
        ),
    ),
    Rule("contacts", "Contains a phone number.", _RU_PHONE),
    Rule("contacts", "Contains a phone number.", _SPELLED_PHONE),
    Rule("contacts", "Contains a phone number.", _INTERNATIONAL_PHONE),
    Rule("contacts", "Contains a phone number.", _CITY_PHONE),
    Rule("contacts", "Contains an e-mail address.", _EMAIL),
    Rule("contacts", "Contains a link.", _URL),
    Rule("contacts", "Contains a web address.", _DOMAIN),
    Rule("contacts", "Contains a messenger or social network handle.", _HANDLE),
    Rule("contacts", "Names a messenger or social network.", _MESSENGERS),
    Rule("contacts", "Moves the conversation off the marketplace.", _OFF_PLATFORM_TALK),
    Rule(
        "rating_solicitation",
        "Asks the buyer to change, raise or delete a review or rating.",
        words(
            rf"{_CHANGE}{_GAP}{_RATING}",
            rf"{_RATING}{_GAP}{_CHANGE_IMPERATIVE}",
        ),
    ),
    Rule(
        "rating_solicitation",
        "Asks for a good rating or review.",
        words(
            r"постав(?:ьте|ить|ите)(?:[\s,]+(?:нам|пожалуйста))*[\s,]+"
            r"(?:(?:5|пять)\s*(?:звезд\w*|★|балл\w*)|пятерк\w*)",
            rf"постав(?:ьте|ить|ите){_GAP}{_RATING}",
            rf"остав(?:ьте|ить|ите){_GAP}{_GOOD_MARK}\s+(?:отзыв|оценк)\w*",
            r"(?:будем|буду|были\s+бы|был\s+бы|была\s+бы)\s+(?:очень\s+)?"
            rf"(?:рад\w*|благодарн\w*|признательн\w*){_GAP}{_GOOD_MARK}[\s\-]*(?:{_RATING}|★)",
            rf"оцени(?:те|ть){_GAP}на\s+(?:5|пять|пятерк\w*|отлично|максимум)",
        ),
    ),
    Rule(
        "rating_solicitation",
        "Offers something in exchange for a review or rating.",
        words(
            rf"{_INCENTIVE}{_SAME_SENTENCE}{_FOR_RATING}",
            rf"{_FOR_RATING}{_SAME_SENTENCE}{_INCENTIVE}",
        ),
    ),
    Rule(
        "off_platform_money",
        "Moves money off the marketplace (a direct transfer or payment).",
        words(
            rf"{_WE_PAY}(?:[\s,]+\w+){{0,3}}?[\s,]+{_ACCOUNT}",
            rf"(?:перевод|оплат)\w*\s+{_ACCOUNT}",
            rf"{_MONEY}(?:[\s,]+\w+){{0,3}}?[\s,]+напрямую",
            rf"напрямую(?:[\s,]+\w+){{0,3}}?[\s,]+{_MONEY}",
            rf"(?:в\s+обход|минуя|без\s+участия)\s+{_MARKETPLACE}",
            rf"{_WE_PAY}(?:[\s,]+\w+){{0,2}}?[\s,]+(?:сами|лично|от\s+себя|наличн\w*)",
            r"сбп|систем\w*\s+быстр\w*\s+платеж\w*",
        ),
    ),
    Rule(
        "off_platform_money",
        "Asks for card or payment details.",
        words(
            r"(?:номер|данн|реквизит)\w*\s+(?:ваш\w*\s+|сво\w*\s+|банковск\w*\s+)*карт\w*",
            r"cvv2?|cvc2?|срок\w*\s+действия\s+карт\w*",
            rf"{_ASK_FOR}\s+(?:нам\s+)?(?:ваш\w*\s+|сво\w*\s+)?реквизит\w*",
            r"(?:номер\w*\s+)?телефон\w*\s+для\s+перевод\w*",
        ),
    ),
    Rule(
        "promise",
        "Promises something the seller cannot guarantee.",
        words(
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
    Rule(
        "blame",
        "Blames the customer.",
        words(
            r"вы\s+(?:сами\s+)?винова(?:т|та|ты)",
            r"(?<!мы\s)(?<!мы\sи\s)(?<!я\s)сам(?:а|и)?\s+винова(?:т|та|ты)",
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
    Rule(
        "dismissive",
        "Dismisses the customer's problem.",
        words(
            r"не\s+наш(?:а|и)\s+проблем\w*",
            r"это\s+ваши\s+проблемы",
            r"ничем\s+не\s+(?:можем|могу|сможем|смогу)\s+(?:вам\s+)?помочь",
            r"ничем\s+(?:вам\s+)?помочь\s+не\s+(?:можем|могу|сможем|смогу)",
            r"обращайтесь\s+куда\s+(?:хотите|угодно)",
            r"(?:нас|меня)\s+(?:это\s+)?не\s+касает\w*",
            r"это\s+нас\s+не\s+касает\w*",
            r"не\s+к\s+нам",
            r"нам\s+всё\s+равно",
            r"(?:разбирайтесь\s+сами|сами\s+разбирайтесь)",
        ),
    ),
)

REFUND_OFFER = Rule(
    "unsolicited_refund",
    "Offers a return or refund the customer did not ask about.",
    words(
        r"возврат\w*",
        r"верн\w*\s+(?:вам\s+)?(?:ваши\s+)?(?:деньги|денежные\s+средства|средства|стоимост\w*"
        r"|оплату|товар\w*)",
        r"(?:деньги|средства)\s+(?:вам\s+)?верн\w*",
        r"компенс\w*",
        r"возмест\w*|возмещ\w*",
        r"обмен(?:а|е|ом|у|ы)?|обменя\w*",
        r"(?:можно|можете|сможете)\s+(?:его\s+|ее\s+|их\s+)?(?:вернуть|сдать\s+обратно)",
        r"refund\w*",
    ),
)
# Customer intents (app.interactions.classify) that make talk of returns and money solicited.
REFUND_INTENTS = frozenset({"return_refund", "defect_quality"})

# Text a draft quotes (the customer's pros, the seller's earlier sentences, the product name) is
# held to more than the rules: besides every wording rule, no order or article number, and no
# word that is fine in the customer's mouth but reads as our promise or as talk of robots once
# quoted ("Гарантия 2 года", "Робот-пылесос"). Matched on the text as written, case-insensitively
# (`engine.quotable`); a stem matches at the start of a word.
NOT_QUOTABLE: tuple[str, ...] = (
    r"\d{5,}|№",
    r"(?<![а-яёa-z])(?:гарант|робот)",
)

_PUBLIC: Mapping[str, Severity] = {
    "ai_mention": "error",
    "contacts": "error",
    "rating_solicitation": "error",
    "off_platform_money": "error",
    "promise": "error",
    "blame": "error",
    "dismissive": "error",
    "unsolicited_refund": "error",
}
_CHAT: Mapping[str, Severity] = {
    **_PUBLIC,
    "promise": "warning",
    "blame": "warning",
    "dismissive": "warning",
    "unsolicited_refund": "warning",
}
SEVERITIES: Mapping[Channel, Mapping[str, Severity]] = {
    "review": _PUBLIC,
    "question": _PUBLIC,
    "chat": _CHAT,
}


@dataclass(frozen=True, slots=True)
class Limits:
    """The marketplace's limits of a reply text (wb-api.md: review answers 2..5000 characters,
    chat messages up to 1000; WB documents no limit for question answers, so we apply the review
    limit, as our sandbox does). Over-length counts the text as sent, too-short counts it
    without surrounding whitespace. Public answers need words (a letter or a digit); a chat
    message may be an emoji, never only punctuation or invisible characters."""

    min_length: int
    max_length: int
    needs_words: bool


LIMITS: Mapping[Channel, Limits] = {
    "review": Limits(min_length=2, max_length=5000, needs_words=True),
    "question": Limits(min_length=2, max_length=5000, needs_words=True),
    "chat": Limits(min_length=1, max_length=1000, needs_words=False),
}
