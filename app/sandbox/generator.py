"""Deterministic Russian marketplace data: a seller's catalogue, and any review, question or chat
of it as a pure function of (seller key, index). Nothing here keeps state."""

import bisect
import random
from dataclasses import dataclass
from typing import Any

from app.sandbox import corpus
from app.sandbox.clock import DAY, msk, utc_nanos
from app.sandbox.ids import Draw, between, chance, draws, mix64, pick, unit

# Rating shares of a typical shop: 1★ 11 %, 2★ 6 %, 3★ 8 %, 4★ 15 %, 5★ 60 %.
_RATING_CUTS = (11, 17, 25, 40)
MAX_CHAT_MESSAGES = 60


@dataclass(frozen=True)
class Product:
    nm_id: int
    imt_id: int
    name: str
    brand: str
    article: str
    subject_id: int
    subject_name: str
    category: str
    sized: bool
    color: str
    sizes: tuple[str, ...]
    price: int


@dataclass(frozen=True)
class Catalog:
    supplier_name: str
    products: tuple[Product, ...]
    cum_weights: tuple[float, ...]  # popularity, for random.choices
    by_nm: dict[int, int]  # nmId -> product index
    # productDetails objects, built once and shared by every item: never mutate them.
    review_details: tuple[tuple[dict[str, Any], ...], ...]  # [product][size]
    question_details: tuple[dict[str, Any], ...]  # [product]


def _supplier_name(rnd: random.Random) -> str:
    if rnd.random() < 0.5:
        initials = f"{rnd.choice('АЕИМНОС')}. {rnd.choice('АВДМНПС')}."
        return f"ИП {rnd.choice(corpus.SURNAMES)} {initials}"
    return f"ООО «{rnd.choice(corpus.COMPANY_WORDS)}»"


def _model(rnd: random.Random, category: corpus.Category, model: int, size: int) -> list[Product]:
    """One product model in one to three colours: several nmIds under one imtId."""
    subject = rnd.choice(category.subjects)
    name, brand = rnd.choice(subject.products), rnd.choice(category.brands)
    sizes = rnd.choice(category.size_sets)
    price = rnd.randint(*category.price_range) // 100 * 100 + 90
    imt_id = rnd.randrange(100_000_000, 900_000_000)
    colors = rnd.sample(corpus.COLORS, min(rnd.randint(1, 3), size))
    return [
        Product(
            nm_id=0,
            imt_id=imt_id,
            name=name,
            brand=brand,
            article=f"{subject.article}-{model:04d}-{code}",
            subject_id=subject.subject_id,
            subject_name=subject.name,
            category=category.key,
            sized=category.sized,
            color=color,
            sizes=sizes,
            price=price,
        )
        for color, code in colors
    ]


def _details(product: Product, supplier_name: str) -> dict[str, Any]:
    return {
        "nmId": product.nm_id,
        "imtId": product.imt_id,
        "productName": product.name,
        "supplierArticle": product.article,
        "supplierName": supplier_name,
        "brandName": product.brand,
    }


def build_catalog(key: int, size: int) -> Catalog:
    """`size` products (nmIds) in one or two categories."""
    rnd = random.Random(key)  # noqa: S311 - reproducible test data, not secrets
    categories = rnd.sample(corpus.CATEGORIES, 2 if rnd.random() < 0.5 else 1)
    models: list[Product] = []
    while len(models) < size:
        models += _model(rnd, rnd.choice(categories), len(models) + 1, size - len(models))
    nm_ids = rnd.sample(range(10_000_000, 300_000_000), size)
    products = [
        Product(**{**vars(p), "nm_id": nm_id}) for p, nm_id in zip(models, nm_ids, strict=True)
    ]
    rnd.shuffle(products)  # popularity below follows position: best sellers are random models
    supplier = _supplier_name(rnd)
    total, cum = 0.0, []
    for rank in range(size):
        total += 1.0 / (rank + 1) ** 0.8  # a few best sellers get most of the feedback
        cum.append(total)
    question_details = tuple(_details(p, supplier) for p in products)
    return Catalog(
        supplier_name=supplier,
        products=tuple(products),
        cum_weights=tuple(cum),
        by_nm={p.nm_id: i for i, p in enumerate(products)},
        review_details=tuple(
            tuple({**d, "size": s} for s in p.sizes)
            for p, d in zip(products, question_details, strict=True)
        ),
        question_details=question_details,
    )


_Pools = tuple[tuple[str, ...], ...]
_REVIEW_POOLS: dict[str, tuple[_Pools, _Pools]] = {
    key: (
        (corpus.POSITIVE, corpus.CATEGORY_POSITIVE[key]),
        (corpus.NEGATIVE, corpus.CATEGORY_NEGATIVE[key]),
    )
    for key in corpus.CATEGORY_POSITIVE
}


def _rating(draw: Draw) -> int:
    return bisect.bisect_right(_RATING_CUTS, draw() % 100) + 1


def _sentences(draw: Draw, pools: _Pools, count: int) -> str:
    picked: list[str] = []
    for _ in range(count):
        sentence = pick(draw, pick(draw, pools))
        if sentence not in picked:
            picked.append(sentence)
    return " ".join(picked)


def _review_text(draw: Draw, rating: int, category: str) -> tuple[str, str, str]:
    good, bad = _REVIEW_POOLS[category]
    if rating == 5:
        text = "" if chance(draw, 0.12) else _sentences(draw, good, between(draw, 1, 3))
    elif rating == 4:
        text = _sentences(draw, good, between(draw, 1, 2)) + " " + pick(draw, corpus.MILD)
    elif rating == 3:
        text = pick(draw, corpus.NEUTRAL) + " " + _sentences(draw, (*good, *bad), 1)
    else:
        text = _sentences(draw, bad, between(draw, 1, 3))
    positive = rating >= 4
    pros = (
        pick(draw, corpus.PROS_GOOD if positive else corpus.PROS_BAD) if chance(draw, 0.55) else ""
    )
    cons = (
        pick(draw, corpus.CONS_GOOD if positive else corpus.CONS_BAD) if chance(draw, 0.45) else ""
    )
    return text, pros, cons


def _photos(draw: Draw, rating: int, external_id: str) -> list[dict[str, str]] | None:
    if not chance(draw, 0.35 if rating <= 2 else 0.18):
        return None
    basket, vol = between(draw, 1, 40), between(draw, 100, 9999)
    base = (
        f"https://feedback{basket:02d}.wbbasket.ru/vol{vol}/part{vol * 100 + basket}/{external_id}"
    )
    return [
        {"fullSize": f"{base}/photos/fs{n}.webp", "miniSize": f"{base}/photos/ms{n}.webp"}
        for n in range(1, between(draw, 2, 5))
    ]


def _video(draw: Draw, external_id: str) -> dict[str, Any] | None:
    if not chance(draw, 0.02):
        return None
    base = f"https://videofeedback{between(draw, 1, 9):02d}.wbbasket.ru/{external_id}"
    return {
        "previewImage": f"{base}/preview.webp",
        "link": f"{base}/index.m3u8",
        "durationSec": between(draw, 5, 60),
    }


def _order_status(draw: Draw, rating: int) -> str:
    roll = draw() % 100
    if rating <= 2:
        return "returned" if roll < 35 else "buyout" if roll < 90 else "notSpecified"
    return "buyout" if roll < 90 else "notSpecified" if roll < 98 else "rejected"


def _matching_size(draw: Draw, rating: int, product: Product) -> str:
    roll = draw() % 100
    if not product.sized:
        return ""
    if rating >= 4:
        return "ok" if roll < 85 else "smaller" if roll < 93 else "bigger"
    return "ok" if roll < 30 else "smaller" if roll < 70 else "bigger"


def _bables(draw: Draw, rating: int) -> list[str] | None:
    if not chance(draw, 0.3):
        return None
    pool = corpus.BABLES_GOOD if rating >= 4 else corpus.BABLES_BAD
    return sorted({pick(draw, pool), pick(draw, pool)})


def review(
    catalog: Catalog, key: int, index: int, external_id: str, created: float, product: int
) -> dict[str, Any]:
    """Every Feedback field except the moving parts (state, answer, wasViewed)."""
    draw = draws(key, index)
    item = catalog.products[product]
    rating = _rating(draw)
    text, pros, cons = _review_text(draw, rating, item.category)
    sizes = catalog.review_details[product]
    return {
        "id": external_id,
        "text": text,
        "pros": pros,
        "cons": cons,
        "productValuation": rating,
        "createdDate": msk(created),
        "productDetails": sizes[draw() % len(sizes)],
        "photoLinks": _photos(draw, rating, external_id),
        "video": _video(draw, external_id),
        "userName": pick(draw, corpus.FIRST_NAMES),
        "orderStatus": _order_status(draw, rating),
        "matchingSize": _matching_size(draw, rating, item),
        "isAbleSupplierFeedbackValuation": rating <= 3,
        "supplierFeedbackValuation": 0,
        "isAbleSupplierProductValuation": rating <= 3,
        "supplierProductValuation": 0,
        "isAbleReturnProductOrders": False,
        "returnProductOrdersDate": None,
        "bables": _bables(draw, rating),
        "lastOrderShkId": 10_000_000_000 + draw(),
        "lastOrderCreatedAt": msk(created - between(draw, 2, 20) * DAY - draw() % 86400),
        "color": item.color,
        "subjectId": item.subject_id,
        "subjectName": item.subject_name,
        "parentFeedbackId": None,
        "childFeedbackId": None,
    }


def review_answer(key: int, index: int, rating: int, user_name: str, brand: str) -> str:
    """The seller's answer to a review answered in the seeded history."""
    pool = (
        corpus.ANSWERS_GOOD
        if rating >= 4
        else corpus.ANSWERS_MIXED
        if rating == 3
        else corpus.ANSWERS_BAD
    )
    template = pool[mix64(key ^ 0xA45 ^ index) % len(pool)]
    return template.format(name=user_name or "Покупатель", brand=brand)


def answer_delay(key: int, index: int) -> float:
    """How long after an item the seller answered it in the seeded history (10 min .. 3 days)."""
    return 600.0 + (mix64(key ^ 0xDE1A7 ^ index) % (3 * 86400))


def question(
    catalog: Catalog, key: int, index: int, external_id: str, created: float, product: int
) -> dict[str, Any]:
    """Every Question field except the moving parts (state, answer, wasViewed)."""
    draw = draws(key, index)
    item = catalog.products[product]
    topic = pick(draw, corpus.TOPICS_BY_CATEGORY[item.category])
    text = pick(draw, corpus.QUESTION_TOPICS[topic]).format(
        height=between(draw, 150, 192),
        weight=between(draw, 45, 110),
        size=pick(draw, item.sizes),
        city=pick(draw, corpus.CITIES),
        color=pick(draw, corpus.COLORS)[0],
    )
    return {
        "id": external_id,
        "text": text,
        "createdDate": utc_nanos(created),
        "productDetails": catalog.question_details[product],
        "isWarned": chance(draw, 0.01),
    }


def question_answer(catalog: Catalog, key: int, index: int, product: int) -> str:
    """The seller's answer to a question answered in the seeded history, on its topic."""
    item = catalog.products[product]
    topic = pick(draws(key, index), corpus.TOPICS_BY_CATEGORY[item.category])
    draw = draws(key ^ 0xA45, index)
    return pick(draw, corpus.QUESTION_ANSWERS[topic]).format(size=pick(draw, item.sizes))


@dataclass(frozen=True)
class ChatMessage:
    sender: str  # client | seller
    text: str
    offset: float  # seconds after the chat opened
    source: str
    images: int


@dataclass(frozen=True)
class ChatScript:
    client_name: str
    issue: str
    size: str
    price: int
    rid: str
    messages: tuple[ChatMessage, ...]


def chat_timeline(key: int, index: int, mean_messages: float) -> tuple[tuple[str, float], ...]:
    """(sender, seconds after opening) of each message. Drawn apart from the texts, so seeding
    a million chats does not have to write them."""
    draw = draws(key ^ 0x71E11E, index, 8 + 3 * MAX_CHAT_MESSAGES)
    count = max(1, min(MAX_CHAT_MESSAGES, round(mean_messages * (0.5 + unit(draw)))))
    with_seller = chance(draw, 0.65)
    timeline = [("client", 0.0)]
    while len(timeline) < count:
        sender, offset = timeline[-1]
        if with_seller and sender == "client" and chance(draw, 0.65):
            timeline.append(("seller", offset + between(draw, 600, 72000)))
        elif sender == "client":
            timeline.append(("client", offset + between(draw, 60, 1800)))
        else:
            timeline.append(("client", offset + between(draw, 300, 21600)))
    return tuple(timeline)


def chat_script(key: int, index: int, product: Product, mean_messages: float) -> ChatScript:
    """A buyer opens with an order issue; follow-ups and, in most chats, seller replies."""
    draw = draws(key, index, 16 + MAX_CHAT_MESSAGES)
    issue = pick(draw, tuple(corpus.CHAT_ISSUES))
    size = pick(draw, product.sizes)
    source = pick(draw, corpus.CHAT_SOURCES)
    opening = pick(draw, corpus.CHAT_ISSUES[issue]).format(size=size, color=product.color)
    images = between(draw, 1, 3) if issue in ("defect", "wrong_item") else 0
    messages = [ChatMessage("client", opening, 0.0, source, images)]
    for sender, offset in chat_timeline(key, index, mean_messages)[1:]:
        if sender == "seller":
            text = pick(draw, corpus.CHAT_SELLER_REPLIES)
            messages.append(ChatMessage("seller", text, offset, "seller-portal", 0))
        else:
            text = pick(draw, corpus.CHAT_CLIENT_MORE)
            messages.append(ChatMessage("client", text, offset, source, 0))
    return ChatScript(
        client_name=pick(draw, corpus.FIRST_NAMES),
        issue=issue,
        size=size,
        price=int(product.price * (0.55 + unit(draw) * 0.4)),
        rid=f"{mix64(key ^ index) % 10**19}.0.0",
        messages=tuple(messages),
    )


def chat_followup(key: int, event_index: int) -> str:
    """A buyer's extra message added to an existing chat after seeding."""
    return corpus.CHAT_CLIENT_MORE[
        mix64(key ^ 0xF0110 ^ event_index) % len(corpus.CHAT_CLIENT_MORE)
    ]
