from sqlalchemy.ext.asyncio import AsyncSession

from app.cards import service as cards
from app.cards.schemas import Timeline
from app.links import service
from tests import factories
from tests.links.helpers import make

NM = 777


def _view(timeline: Timeline) -> list[tuple[int, str, float, str, str | None]]:
    return [
        (i.interaction.id, i.match_reason, i.confidence, i.action_mode, i.level)
        for i in timeline.items
    ]


async def test_customer_order_scope_is_the_order_thread_in_time_order(
    session: AsyncSession,
) -> None:
    seller = await factories.create_seller(session)
    s = seller.id
    x = await make(session, s, "chat", hours=5, customer_id="c1", order_id="o1", text="Где заказ?")
    review = await make(session, s, "review", hours=50, customer_id="c1", order_id="o1", rating=2)
    question = await make(session, s, "question", hours=-3, customer_id="c1", order_id="o1")
    await make(session, s, "review", hours=10, customer_id="c1", order_id="o2")

    timeline = await cards.timeline(await session.connection(), s, x.id)

    assert timeline.scope == "customer_order"
    assert _view(timeline) == [
        (question.id, "same_customer_order", 1.0, "auto_allowed", "B"),
        (x.id, "self", 1.0, "auto_allowed", None),
        (review.id, "same_customer_order", 1.0, "auto_allowed", "B"),
    ]
    first = timeline.items[1].interaction
    assert (first.channel, first.status, first.text_preview) == ("chat", "open", "Где заказ?")
    assert timeline.items[2].interaction.rating == 2


async def test_customer_scope_when_only_the_customer_is_shared(session: AsyncSession) -> None:
    seller = await factories.create_seller(session)
    s = seller.id
    x = await make(session, s, "review", customer_id="c1", order_id="o1", customer_name="Анна")
    earlier = await make(session, s, "chat", hours=-100, customer_id="c1", order_id="o7")
    later = await make(session, s, "question", hours=100, customer_id="c1")

    timeline = await cards.timeline(await session.connection(), s, x.id)

    assert timeline.scope == "customer"
    assert _view(timeline) == [
        (earlier.id, "same_customer", 0.9, "auto_allowed", "B"),
        (x.id, "self", 1.0, "auto_allowed", None),
        (later.id, "same_customer", 0.9, "auto_allowed", "B"),
    ]
    assert timeline.items[1].interaction.customer_name == "Анна"


async def test_product_scope_is_30_days_nearest_50_with_probable_links_merged(
    session: AsyncSession,
) -> None:
    seller = await factories.create_seller(session)
    s = seller.id
    x = await make(session, s, "chat", nm_id=NM, intent="sizing_fit")
    probable = await make(session, s, "review", hours=2, nm_id=NM, intent="sizing_fit")
    low = await make(session, s, "question", hours=30, nm_id=NM)
    near = [await make(session, s, "review", hours=-(h + 1) * 6, nm_id=NM) for h in range(60)]
    await make(session, s, "review", hours=24 * 31, nm_id=NM)
    await make(session, s, "review", hours=1, nm_id=NM + 1)
    await service.recompute_for(session, s, [x.id])

    timeline = await cards.timeline(await session.connection(), s, x.id)

    assert timeline.scope == "product"
    assert timeline.truncated is True
    view = {row[0]: row[1:] for row in _view(timeline)}
    assert view[x.id] == ("self", 1.0, "auto_allowed", None)
    assert view[probable.id] == ("probable_same_customer", 0.85, "assist_only", "C")
    # A low-band link never shows: the item is there as product context only.
    assert view[low.id] == ("same_product", 0.85, "auto_allowed", "A")
    assert len(timeline.items) == 51
    assert set(view) == {x.id, probable.id, low.id} | {r.id for r in near[:48]}
    times = [i.interaction.occurred_at for i in timeline.items]
    assert times == sorted(times)


async def test_single_scope_when_nothing_relates(session: AsyncSession) -> None:
    seller = await factories.create_seller(session)
    s = seller.id
    x = await make(session, s, "review", nm_id=NM, customer_id="c1", order_id="o1")
    await make(session, s, "review", hours=24 * 40, nm_id=NM)

    timeline = await cards.timeline(await session.connection(), s, x.id)

    assert (timeline.scope, timeline.truncated) == ("single", False)
    assert _view(timeline) == [(x.id, "self", 1.0, "auto_allowed", None)]


async def test_low_band_links_never_appear_and_medium_ones_do(session: AsyncSession) -> None:
    seller = await factories.create_seller(session)
    s = seller.id
    x = await make(session, s, "chat", nm_id=NM, customer_id="c1", customer_name="Ира")
    sibling = await make(session, s, "review", hours=-400, customer_id="c1")
    low = await make(session, s, "review", hours=48, nm_id=NM, customer_name="ира")
    medium = await make(session, s, "question", hours=5, nm_id=NM)
    await service.recompute_for(session, s, [x.id])

    timeline = await cards.timeline(await session.connection(), s, x.id)

    assert timeline.scope == "customer"
    assert [row[0] for row in _view(timeline)] == [sibling.id, x.id, medium.id]
    assert timeline.items[2].level == "C"
    assert timeline.items[2].action_mode == "assist_only"
    assert low.id not in {link.target_id for link in await service.links_for(session, s, x.id)}
