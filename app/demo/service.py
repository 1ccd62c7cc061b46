"""Demo data for a seller without a marketplace key: a dozen realistic interactions.

They go through the sync's own write path (`sync.repository.upsert_interactions` and
`insert_messages`), normalised like synced items (intent, priority and SLA from
`interactions.classify` with the seller's SLA targets; status and needs_response by the
mapping's rules), marked `source="demo"`, with fixed external ids (`demo-review-1`, …) that no
marketplace id looks like. Seeding is idempotent: items the seller already has are left alone
(whatever the operator did with them); only missing ones are created. Times are relative to the
moment an item is first created, so a fresh demo inbox has due, overdue and answered items.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.interactions import classify
from app.interactions.models import Interaction
from app.links import service as links_service
from app.sellers import service as sellers_service
from app.sync import service as sync_service

MARKETPLACE = "wildberries"
SOURCE = "demo"


@dataclass(frozen=True)
class Product:
    nm_id: int
    article: str
    name: str
    brand: str


SNEAKERS = Product(146829301, "AS-RUN-42", "Кроссовки беговые мужские AirStep", "AirStep")
DRESS = Product(183400127, "LN-DRESS-MIDI", "Платье летнее льняное миди", "Linen Line")
KETTLE = Product(201556884, "KT-GLASS-17", "Чайник электрический стеклянный 1,7 л", "HomeTea")
POWERBANK = Product(99812345, "PB-20K-PD", "Пауэрбанк 20000 мАч с быстрой зарядкой", "VoltGo")
BACKPACK = Product(157770012, "BP-KIDS-ORTHO", "Рюкзак школьный ортопедический", "SchoolPro")


@dataclass(frozen=True)
class Answer:
    text: str
    after: timedelta  # after the item was written


@dataclass(frozen=True)
class Review:
    n: int
    product: Product
    ago: timedelta
    customer: str
    rating: int
    text: str = ""
    pros: str = ""
    cons: str = ""
    photos: int = 0
    answer: Answer | None = None


@dataclass(frozen=True)
class Question:
    n: int
    product: Product
    ago: timedelta
    text: str
    answer: Answer | None = None


@dataclass(frozen=True)
class Message:
    direction: str  # "in" from the buyer, "out" from the seller
    ago: timedelta
    text: str


@dataclass(frozen=True)
class Chat:
    n: int
    product: Product
    customer: str
    order_id: str
    messages: tuple[Message, ...] = field(default_factory=tuple)


def _h(hours: float) -> timedelta:
    return timedelta(hours=hours)


REVIEWS = (
    Review(
        1, KETTLE, _h(3), "Марина", 1,
        text="Через неделю чайник перестал выключаться, а вчера из-под подставки пошёл дым и "
        "запахло горелым. Это опасно, требую вернуть деньги!",
        pros="Красивая подсветка", cons="Дым из подставки, запах гари", photos=2,
    ),
    Review(
        2, DRESS, _h(30), "Екатерина", 2,
        text="Маломерит на размер: ношу 44, а по факту скорее 42, в груди тесно.",
        pros="Приятная ткань, цвет как на фото", cons="Маломерит", photos=1,
    ),
    Review(
        3, POWERBANK, _h(20), "Игорь", 3,
        text="Заряжает нормально, но сам пауэрбанк сильно греется, а заряжается почти всю ночь.",
        pros="Ёмкий, хватает на два телефона", cons="Греется, долго заряжается",
    ),
    Review(
        4, SNEAKERS, _h(50), "Алексей", 4,
        text="Удобные и лёгкие, бегаю в них по утрам. Единственный минус — коротковаты шнурки.",
        pros="Лёгкие, хорошая амортизация", cons="Короткие шнурки", photos=3,
        answer=Answer(
            "Алексей, спасибо за отзыв! Пожелание про шнурки передали производителю. "
            "Хороших вам пробежек!",
            _h(5),
        ),
    ),
    Review(
        5, BACKPACK, _h(96), "Ольга", 5,
        text="Отличный рюкзак: спинка жёсткая, ребёнок доволен, всё пришло целым.",
        pros="Ортопедическая спинка, много карманов", photos=1,
        answer=Answer("Ольга, спасибо! Рады, что рюкзак понравился и вам, и ребёнку.", _h(8)),
    ),
    Review(6, SNEAKERS, _h(5), "Дмитрий", 5),  # stars only: nothing to answer
)  # fmt: skip

QUESTIONS = (
    Question(1, SNEAKERS, timedelta(minutes=40),
             "Подскажите, какой размер брать при стопе 27 см? Обычно ношу 42."),
    Question(
        2, POWERBANK, _h(26),
        "Подойдёт ли для зарядки MacBook Air по USB-C? Какая мощность на выходе?",
        answer=Answer(
            "Здравствуйте! Да, порт USB-C выдаёт до 65 Вт по Power Delivery, MacBook Air "
            "заряжается полностью.",
            _h(2),
        ),
    ),
    Question(3, KETTLE, _h(6), "Когда будет снова в наличии белый цвет?"),
)  # fmt: skip

CHATS = (
    Chat(1, DRESS, "Анна", "demo-order-1001", (
        Message("in", _h(2), "Здравствуйте! Получила платье, а на подоле дырка, фото приложила."),
        Message("in", _h(1.9), "Хочу оформить возврат, подскажите, как это сделать?"),
    )),
    Chat(2, SNEAKERS, "Сергей", "demo-order-1002", (
        Message("in", _h(26), "Добрый день! Заказ неделю не могу получить, в пункте выдачи "
                "говорят, что его нет."),
        Message("out", _h(25), "Здравствуйте, Сергей! Уточнили у склада: заказ в пути и будет в "
                "пункте выдачи завтра до 18:00."),
    )),
    Chat(3, POWERBANK, "Виктор", "demo-order-1003", (
        Message("in", _h(5), "Пауэрбанк сильно нагревается и пахнет горелым, пользоваться боюсь."),
        Message("out", _h(4.8), "Здравствуйте! Пожалуйста, не заряжайте и не используйте его. "
                "Мы поможем — уточните, когда он начал греться?"),
        Message("in", _h(4.5), "Со второго дня. Можно обменять на новый?"),
    )),
)  # fmt: skip

ITEMS = len(REVIEWS) + len(QUESTIONS) + len(CHATS)


@dataclass(frozen=True)
class SeedResult:
    created: int
    existing: int

    @property
    def items(self) -> int:
        return self.created + self.existing


async def seed(session: AsyncSession, seller_id: int, *, now: datetime | None = None) -> SeedResult:
    """Create the demo items the seller does not have yet (and their chat messages)."""
    now = now or datetime.now(UTC)
    prefs = await sellers_service.get_settings(session, seller_id)
    sla_targets = dict(prefs.sla_targets)
    have = await _existing(session, seller_id)
    lists = [
        _review_row(seller_id, r, now, sla_targets)
        for r in REVIEWS
        if ("review", _ext("review", r.n)) not in have
    ] + [
        _question_row(seller_id, q, now, sla_targets)
        for q in QUESTIONS
        if ("question", _ext("question", q.n)) not in have
    ]
    chats = [c for c in CHATS if ("chat", _ext("chat", c.n)) not in have]
    chat_rows = [_chat_row(seller_id, c, now, sla_targets) for c in chats]

    written = await sync_service.upsert_interactions(session, lists)
    written_chats = await sync_service.upsert_interactions(session, chat_rows, chat=True)
    messages = [
        _message_row(seller_id, written_chats.ids[_ext("chat", c.n)], c, i, m, now)
        for c in chats
        if _ext("chat", c.n) in written_chats.ids
        for i, m in enumerate(c.messages, start=1)
    ]
    await sync_service.insert_messages(session, messages)
    new_ids = written.new_ids + written_chats.new_ids
    if new_ids:  # cross-channel links, computed after commit as for synced items
        await links_service.request_recompute(session, seller_id, new_ids)
    created = written.created + written_chats.created
    return SeedResult(created=created, existing=ITEMS - created)


async def _existing(session: AsyncSession, seller_id: int) -> set[tuple[str, str]]:
    """(channel, external_id) of the demo items the seller already has."""
    wanted = (
        [("review", _ext("review", r.n)) for r in REVIEWS]
        + [("question", _ext("question", q.n)) for q in QUESTIONS]
        + [("chat", _ext("chat", c.n)) for c in CHATS]
    )
    result = await session.execute(
        select(Interaction.channel, Interaction.external_id).where(
            Interaction.seller_id == seller_id,
            Interaction.marketplace == MARKETPLACE,
            tuple_(Interaction.channel, Interaction.external_id).in_(wanted),
        )
    )
    return {(channel, external_id) for channel, external_id in result}


def _ext(channel: str, n: int) -> str:
    return f"demo-{channel}-{n}"


def _base(seller_id: int, channel: str, n: int, product: Product) -> dict[str, Any]:
    return {
        "seller_id": seller_id,
        "marketplace": MARKETPLACE,
        "channel": channel,
        "external_id": _ext(channel, n),
        "source": SOURCE,
        "thread_key": None,
        "customer_id": None,
        "order_id": None,
        "customer_name": None,
        "nm_id": product.nm_id,
        "product_article": product.article,
        "product_name": product.name,
        "pros": None,
        "cons": None,
        "rating": None,
        "photos_count": 0,
        "first_response_at": None,
    }


def _review_row(
    seller_id: int, r: Review, now: datetime, sla_targets: dict[str, Any]
) -> dict[str, Any]:
    occurred = now - r.ago
    intent = classify.classify_intent(r.text, r.cons, r.pros)
    priority = classify.review_priority(r.rating, intent, r.text, r.cons)
    status = "responded" if r.answer else "open"
    has_content = bool(r.text or r.pros or r.cons or r.photos)
    return _base(seller_id, "review", r.n, r.product) | {
        "customer_name": r.customer,
        "text": r.text,
        "pros": r.pros,
        "cons": r.cons,
        "rating": r.rating,
        "photos_count": r.photos,
        "status": status,
        "needs_response": status == "open" and (has_content or r.rating <= 3),
        "intent": intent,
        "priority": priority.level,
        "priority_reason": priority.reason,
        "sla_due_at": classify.sla_due(sla_targets, "review", intent, occurred),
        "occurred_at": occurred,
        "first_response_at": occurred + r.answer.after if r.answer else None,
        "extra": {
            "answer": {"text": r.answer.text, "state": "wbRu", "editable": False}
            if r.answer
            else None,
            "state": "wbRu",
            "brand": r.product.brand,
            "demo": True,
        },
    }


def _question_row(
    seller_id: int, q: Question, now: datetime, sla_targets: dict[str, Any]
) -> dict[str, Any]:
    occurred = now - q.ago
    intent = classify.classify_intent(q.text)
    priority = classify.question_priority(intent, q.text)
    answered_at = occurred + q.answer.after if q.answer else None
    status = "responded" if q.answer else "open"
    return _base(seller_id, "question", q.n, q.product) | {
        "text": q.text,
        "status": status,
        "needs_response": status == "open",
        "intent": intent,
        "priority": priority.level,
        "priority_reason": priority.reason,
        "sla_due_at": classify.sla_due(sla_targets, "question", intent, occurred),
        "occurred_at": occurred,
        "first_response_at": answered_at,
        "extra": {
            # Fixed text, no timestamps: re-seeding must not look like an edit.
            "answer": {"text": q.answer.text, "editable": False} if q.answer else None,
            "state": "wbRu",
            "brand": q.product.brand,
            "demo": True,
        },
    }


def _chat_row(
    seller_id: int, c: Chat, now: datetime, sla_targets: dict[str, Any]
) -> dict[str, Any]:
    """As `connectors.wildberries.mapping.chat_row` builds a chat from its events."""
    buyer = [m for m in c.messages if m.direction == "in"]
    last, first = c.messages[-1], c.messages[0]
    outs = [m.ago for m in c.messages if m.direction == "out"]
    last_out, first_out = (min(outs), max(outs)) if outs else (None, None)
    waiting = [m for m in buyer if last_out is None or m.ago < last_out]
    intent = classify.classify_intent(*(m.text for m in buyer))
    priority = classify.chat_priority(intent, " ".join(m.text for m in buyer))
    open_ = last.direction == "in"
    due_from = now - waiting[0].ago if waiting else None
    return _base(seller_id, "chat", c.n, c.product) | {
        "thread_key": _ext("chat", c.n),
        "order_id": c.order_id,
        "customer_name": c.customer,
        "text": buyer[-1].text if buyer else last.text,
        "status": "open" if open_ else "responded",
        "needs_response": open_,
        "intent": intent,
        "priority": priority.level,
        "priority_reason": priority.reason,
        "sla_due_at": classify.sla_due(sla_targets, "chat", intent, due_from) if due_from else None,
        "occurred_at": now - first.ago,
        "first_response_at": now - first_out if first_out is not None else None,
        "extra": {
            "reply_sign": None,
            "last_message_at": (now - last.ago).isoformat(),
            "last_sender": "client" if last.direction == "in" else "seller",
            "demo": True,
        },
    }


def _message_row(
    seller_id: int, interaction_id: int, c: Chat, i: int, m: Message, now: datetime
) -> dict[str, Any]:
    return {
        "seller_id": seller_id,
        "interaction_id": interaction_id,
        "external_id": f"{_ext('chat', c.n)}-{i}",
        "direction": m.direction,
        "sender_name": c.customer if m.direction == "in" else "seller",
        "text": m.text,
        "attachments": [],
        "sent_at": now - m.ago,
    }
