from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.links import service
from app.links.models import LinkCandidate
from tests import factories
from tests.links.helpers import make, stored

NM = 555


async def _pair_link(session: AsyncSession, source_id: int, target_id: int) -> LinkCandidate:
    result = await session.execute(
        select(LinkCandidate)
        .where(LinkCandidate.source_id == source_id, LinkCandidate.target_id == target_id)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one()


async def test_each_probabilistic_signal_adds_its_weight(session: AsyncSession) -> None:
    seller = await factories.create_seller(session)
    s = seller.id
    chat = await make(
        session, s, "chat", nm_id=NM, intent="sizing_fit", customer_name="  ПЁТР ",
        order_id="srid-0042-abc", extra={"size": "42"},
    )  # fmt: skip
    product_only = await make(session, s, "review", hours=30, nm_id=NM)
    plus_time = await make(session, s, "review", hours=-5, nm_id=NM)
    plus_intent = await make(session, s, "question", hours=6, nm_id=NM, intent="sizing_fit")
    plus_name = await make(
        session, s, "review", hours=2, nm_id=NM, intent="sizing_fit", customer_name="петр"
    )
    plus_order_ref = await make(
        session, s, "review", hours=1, nm_id=NM, intent="sizing_fit", customer_name="Петр",
        text="Заказ srid-0042-abc пришёл мятым",
    )  # fmt: skip
    size_only = await make(session, s, "review", hours=40, nm_id=NM, extra={"size": "42"})

    await service.recompute_for(session, s, [chat.id])

    expected = {
        product_only.id: (0.45, "low", {"same_product_7d": 0.45}),
        plus_time.id: (0.65, "medium", {"same_product_7d": 0.45, "within_24h": 0.2}),
        plus_intent.id: (
            0.85, "high", {"same_product_7d": 0.45, "within_24h": 0.2, "same_intent": 0.2},
        ),
        plus_name.id: (
            0.95, "high",
            {"same_product_7d": 0.45, "within_24h": 0.2, "same_intent": 0.2, "same_name": 0.1},
        ),
        plus_order_ref.id: (
            1.0, "high",
            {"same_product_7d": 0.45, "within_24h": 0.2, "same_intent": 0.2, "same_name": 0.1,
             "order_ref": 0.05},
        ),
        size_only.id: (0.5, "low", {"same_product_7d": 0.45, "order_ref": 0.05}),
    }  # fmt: skip
    for target_id, (confidence, band, signals) in expected.items():
        link = await _pair_link(session, chat.id, target_id)
        assert (link.confidence, link.band, link.signals) == (confidence, band, signals)
        assert (link.level, link.deterministic) == ("C", False)
        assert link.match_reason == "probable_same_customer"


async def test_other_intent_empty_names_and_short_order_ids_are_not_signals(
    session: AsyncSession,
) -> None:
    seller = await factories.create_seller(session)
    s = seller.id
    # A short order id is not looked for in other texts: "12" is in too many of them.
    chat = await make(
        session, s, "chat", nm_id=NM, intent="other", customer_name=" ", order_id="12"
    )
    review = await make(
        session, s, "review", hours=30, nm_id=NM, intent="other", customer_name="",
        text="Через 12 дней порвались",
    )  # fmt: skip
    in_extra = await make(
        session, s, "question", hours=40, nm_id=NM, extra={"note": "srid-9999999"}
    )
    chat_with_long_order = await make(
        session, s, "chat", hours=41, nm_id=NM, order_id="srid-9999999"
    )
    unknown = await make(session, s, "question", hours=30, nm_id=NM)

    await service.recompute_for(session, s, [chat.id])

    assert (await _pair_link(session, chat.id, review.id)).signals == {"same_product_7d": 0.45}
    assert (await _pair_link(session, chat.id, unknown.id)).signals == {"same_product_7d": 0.45}
    await service.recompute_for(session, s, [chat_with_long_order.id])
    assert (await _pair_link(session, chat_with_long_order.id, in_extra.id)).signals == {
        "same_product_7d": 0.45, "within_24h": 0.2, "order_ref": 0.05,
    }  # fmt: skip


async def test_probable_candidates_need_another_channel_the_product_and_7_days(
    session: AsyncSession,
) -> None:
    seller = await factories.create_seller(session)
    s = seller.id
    chat = await make(session, s, "chat", nm_id=NM, intent="sizing_fit", customer_name="Анна")
    edge = await make(session, s, "review", hours=7 * 24, nm_id=NM)
    await make(session, s, "chat", hours=1, nm_id=NM, intent="sizing_fit", customer_name="Анна")
    await make(session, s, "review", hours=7 * 24 + 1, nm_id=NM, customer_name="Анна")
    await make(session, s, "review", hours=1, nm_id=NM + 1, customer_name="Анна")
    await make(session, s, "review", hours=1, customer_name="Анна")

    await service.recompute_for(session, s, [chat.id])

    assert set(await stored(session, s)) == {(chat.id, edge.id), (edge.id, chat.id)}


async def test_a_name_match_alone_never_reaches_above_low_nor_auto(session: AsyncSession) -> None:
    seller = await factories.create_seller(session)
    s = seller.id
    chat = await make(session, s, "chat", nm_id=NM, customer_name="Иван Иванов")
    # The name and nothing else: another product, or the product but weeks apart.
    other_product = await make(
        session, s, "review", hours=1, nm_id=NM + 1, customer_name="иван иванов"
    )
    weeks_apart = await make(
        session, s, "review", hours=24 * 20, nm_id=NM, customer_name="Иван Иванов"
    )
    # The name with the product only: 0.45 + 0.10 = 0.55, still low.
    same_product = await make(session, s, "review", hours=48, nm_id=NM, customer_name="ИВАН ИВАНОВ")

    await service.recompute_for(session, s, [chat.id, other_product.id, weeks_apart.id])

    links = await stored(session, s)
    assert set(links) == {(chat.id, same_product.id), (same_product.id, chat.id)}
    link = links[(chat.id, same_product.id)]
    assert (link.confidence, link.band, link.deterministic) == (0.55, "low", False)
    assert link.signals == {"same_product_7d": 0.45, "same_name": 0.1}
    assert await service.links_for(session, s, chat.id) == []
    assert await service.links_for(session, s, chat.id, min_band="medium") == []
    [shown] = await service.links_for(session, s, chat.id, min_band="low")
    assert (shown.band, shown.action_mode) == ("low", "assist_only")
    assert service.band(service.SAME_NAME) == "low"
    assert service.action_mode("C", False, service.SAME_NAME) == "assist_only"


async def test_deterministic_links_by_customer_and_order_are_auto_allowed(
    session: AsyncSession,
) -> None:
    seller = await factories.create_seller(session)
    s = seller.id
    x = await make(session, s, "chat", customer_id="c1", order_id="o1", nm_id=NM)
    both = await make(session, s, "review", hours=24 * 60, customer_id="c1", order_id="o1")
    customer = await make(session, s, "review", hours=-24 * 90, customer_id="c1", order_id="o2")
    order = await make(session, s, "chat", hours=3, order_id="o1")
    # Two interactions with no customer id at all, the same order.
    anonymous = await make(session, s, "review", hours=-24 * 5, order_id="o1")
    # A deterministic link wins over a probable one for the same pair.
    customer_and_product = await make(
        session, s, "question", hours=2, customer_id="c1", nm_id=NM, intent="sizing_fit"
    )
    await make(session, s, "review", customer_id="c2", order_id="o3")

    await service.recompute_for(session, s, [x.id])

    links = {link.target_id: link for link in await service.links_for(session, s, x.id)}
    expected = {
        both.id: (1.0, "same_customer_order"),
        order.id: (0.95, "same_order"),
        anonymous.id: (0.95, "same_order"),
        customer.id: (0.9, "same_customer"),
        customer_and_product.id: (0.9, "same_customer"),
    }
    assert {t: (link.confidence, link.match_reason) for t, link in links.items()} == expected
    for link in links.values():
        assert (link.level, link.deterministic, link.band) == ("B", True, "high")
        assert link.action_mode == "auto_allowed"
        assert link.signals == {link.match_reason: link.confidence}


async def test_a_probable_link_is_assist_only_even_at_full_score(session: AsyncSession) -> None:
    seller = await factories.create_seller(session)
    s = seller.id
    chat = await make(
        session, s, "chat", nm_id=NM, intent="defect_quality", customer_name="Олег",
        order_id="srid-777777",
    )  # fmt: skip
    review = await make(
        session, s, "review", hours=1, nm_id=NM, intent="defect_quality", customer_name="олег",
        text="брак, заказ srid-777777",
    )  # fmt: skip

    await service.recompute_for(session, s, [chat.id])

    [link] = await service.links_for(session, s, chat.id)
    assert link.target_id == review.id
    assert (link.confidence, link.band, link.level) == (1.0, "high", "C")
    assert link.deterministic is False
    assert link.action_mode == "assist_only"
    assert service.action_mode("C", True, 1.0) == "assist_only"


async def test_known_different_customers_are_never_probably_the_same(
    session: AsyncSession,
) -> None:
    seller = await factories.create_seller(session)
    s = seller.id
    chat = await make(session, s, "chat", nm_id=NM, customer_id="c1", intent="sizing_fit")
    await make(session, s, "review", hours=1, nm_id=NM, customer_id="c2", intent="sizing_fit")

    assert await service.recompute_for(session, s, [chat.id]) == 0


async def test_links_are_written_in_both_directions(session: AsyncSession) -> None:
    seller = await factories.create_seller(session)
    s = seller.id
    chat = await make(session, s, "chat", nm_id=NM, intent="sizing_fit")
    review = await make(session, s, "review", hours=2, nm_id=NM, intent="sizing_fit")

    written = await service.recompute_for(session, s, [chat.id])

    links = await stored(session, s)
    assert written == 2
    forward, backward = links[(chat.id, review.id)], links[(review.id, chat.id)]
    for column in ("level", "deterministic", "confidence", "band", "match_reason", "signals"):
        assert getattr(forward, column) == getattr(backward, column)
    [back] = await service.links_for(session, s, review.id)
    assert (back.target_id, back.target_channel, back.confidence) == (chat.id, "chat", 0.85)


async def test_recomputing_replaces_stale_links_in_both_directions(
    session: AsyncSession,
) -> None:
    seller = await factories.create_seller(session)
    s = seller.id
    chat = await make(session, s, "chat", nm_id=NM, customer_id="c1")
    review = await make(session, s, "review", hours=2, nm_id=NM, customer_id="c1")
    question = await make(session, s, "question", hours=3, nm_id=NM)
    await service.recompute_for(session, s, [chat.id])
    assert (await stored(session, s))[(review.id, chat.id)].match_reason == "same_customer"

    review.customer_id, review.nm_id = "c9", NM + 1
    await session.flush()
    await service.recompute_for(session, s, [chat.id])

    links = await stored(session, s)
    assert set(links) == {(chat.id, question.id), (question.id, chat.id)}
    assert links[(chat.id, question.id)].confidence == 0.65


async def test_each_source_keeps_its_best_20_nearest_first_on_ties(
    session: AsyncSession,
) -> None:
    seller = await factories.create_seller(session)
    s = seller.id
    chat = await make(session, s, "chat", nm_id=NM)
    reviews = [await make(session, s, "review", hours=30 + i, nm_id=NM) for i in range(25)]
    best = await make(session, s, "review", hours=100, nm_id=NM, extra={"size": "L"})
    chat.extra = {"size": "L"}
    await session.flush()

    written = await service.recompute_for(session, s, [chat.id])

    links = await stored(session, s)
    targets = {t for (src, t) in links if src == chat.id}
    assert written == 40
    assert targets == {best.id} | {r.id for r in reviews[:19]}
    assert {src for (src, t) in links if t == chat.id} == targets


async def test_recompute_seller_rebuilds_everything_and_only_that_seller(
    session: AsyncSession,
) -> None:
    seller = await factories.create_seller(session)
    other = await factories.create_seller(session, "Other")
    s = seller.id
    chat = await make(session, s, "chat", nm_id=NM, customer_name="Анна", intent="sizing_fit")
    review = await make(session, s, "review", hours=1, nm_id=NM, customer_name="Анна")
    again = await make(session, s, "review", hours=500, customer_id="c1")
    first = await make(session, s, "question", hours=900, customer_id="c1")
    # The same product, time, intent and name at another seller: never linked across.
    twin = await make(
        session, other.id, "review", hours=1, nm_id=NM, customer_name="Анна", intent="sizing_fit",
        customer_id="c1",
    )  # fmt: skip
    other_chat = await make(session, other.id, "chat", nm_id=NM, customer_name="Анна")
    await service.recompute_for(session, other.id, [other_chat.id])
    before_other = await stored(session, other.id)
    session.add(
        LinkCandidate(
            seller_id=s, source_id=chat.id, target_id=first.id, level="C",
            deterministic=False, confidence=0.7, band="medium", match_reason="stale",
        )
    )  # fmt: skip
    await session.flush()

    written = await service.recompute_seller(session, s, batch=2)

    links = await stored(session, s)
    assert written == 4
    assert set(links) == {
        (chat.id, review.id), (review.id, chat.id), (again.id, first.id), (first.id, again.id),
    }  # fmt: skip
    assert links[(chat.id, review.id)].confidence == 0.75
    assert set(await stored(session, other.id)) == set(before_other) == {
        (other_chat.id, twin.id), (twin.id, other_chat.id),
    }  # fmt: skip
    # Another seller's ids match nothing.
    assert await service.recompute_for(session, s, [twin.id, other_chat.id]) == 0
    assert set(await stored(session, other.id)) == set(before_other)
