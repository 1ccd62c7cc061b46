from sqlalchemy.ext.asyncio import AsyncSession

from app.links import service, tasks
from app.worker.celery_app import celery_app
from tests import factories
from tests.links.helpers import make, stored

NM = 999


def test_the_task_is_registered_under_its_name() -> None:
    assert tasks.recompute.name == service.RECOMPUTE_TASK == "links.recompute"
    assert service.RECOMPUTE_TASK in celery_app.tasks


async def test_task_body_recomputes_given_ids_or_the_whole_seller(session: AsyncSession) -> None:
    seller = await factories.create_seller(session)
    s = seller.id
    chat = await make(session, s, "chat", nm_id=NM, intent="sizing_fit")
    review = await make(session, s, "review", hours=1, nm_id=NM, intent="sizing_fit")
    order_a = await make(session, s, "chat", hours=500, order_id="o1")
    order_b = await make(session, s, "review", hours=520, order_id="o1")

    assert await service.recompute(session, s, [chat.id]) == 2
    assert set(await stored(session, s)) == {(chat.id, review.id), (review.id, chat.id)}

    assert await service.recompute(session, s, None) == 4
    assert set(await stored(session, s)) == {
        (chat.id, review.id), (review.id, chat.id),
        (order_a.id, order_b.id), (order_b.id, order_a.id),
    }  # fmt: skip

    # Idempotent: running it again (a redelivered task) changes nothing.
    before = {k: (v.confidence, v.band) for k, v in (await stored(session, s)).items()}
    assert await service.recompute(session, s, None) == 4
    after = {k: (v.confidence, v.band) for k, v in (await stored(session, s)).items()}
    assert after == before
    assert await service.recompute(session, s, []) == 0
