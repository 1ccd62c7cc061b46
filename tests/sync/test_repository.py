from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.interactions.models import Interaction
from app.sync import repository
from app.sync.normalize import SellerContext
from tests import factories
from tests.sync import payloads


async def _row(session: AsyncSession, seller_id: int, external_id: str) -> Interaction:
    result = await session.execute(
        select(Interaction)
        .where(Interaction.seller_id == seller_id, Interaction.external_id == external_id)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one()


async def test_same_payload_twice_changes_nothing(session: AsyncSession) -> None:
    seller = await factories.create_seller(session)
    ctx = SellerContext(seller.id, {})
    rows = [payloads.review_row(payloads.feedback(i), ctx) for i in range(3)]

    first = await repository.upsert_interactions(session, rows)
    again = await repository.upsert_interactions(session, rows)

    assert (first.created, first.updated, len(first.new_ids)) == (3, 0, 3)
    assert (again.created, again.updated, again.new_ids) == (0, 0, [])


async def test_light_update_refreshes_volatile_fields_and_keeps_heavy_and_operator_ones(
    session: AsyncSession,
) -> None:
    seller = await factories.create_seller(session)
    ctx = SellerContext(seller.id, {})
    await repository.upsert_interactions(session, [payloads.review_row(payloads.feedback(1), ctx)])
    stored = await _row(session, seller.id, "fb000000000000000001")
    stored.priority, stored.priority_reason = "urgent", "operator override"
    stored.intent = "defect_quality"
    await session.flush()
    answered = payloads.feedback(
        1, text="Исправленный текст", answer={"text": "Спасибо", "state": "wbRu"}
    )

    written = await repository.upsert_interactions(session, [payloads.review_row(answered, ctx)])
    created, updated = written.created, written.updated

    row = await _row(session, seller.id, "fb000000000000000001")
    assert (created, updated) == (0, 1)
    assert row.text == "Исправленный текст"
    assert row.status == "responded"
    assert row.needs_response is False
    assert (row.priority, row.intent) == ("urgent", "defect_quality")


async def test_pending_reply_is_kept_during_the_moderation_window(session: AsyncSession) -> None:
    seller = await factories.create_seller(session)
    ctx = SellerContext(seller.id, {})
    open_row = payloads.review_row(payloads.feedback(1), ctx)
    await repository.upsert_interactions(
        session, [open_row, payloads.review_row(payloads.feedback(2), ctx)]
    )
    for external_id, until in (
        ("fb000000000000000001", datetime.now(UTC) + timedelta(minutes=30)),
        ("fb000000000000000002", datetime.now(UTC) - timedelta(minutes=1)),
    ):
        row = await _row(session, seller.id, external_id)
        row.status, row.needs_response, row.reply_pending_until = "pending_reply", False, until
    await session.flush()

    await repository.upsert_interactions(
        session,
        [open_row, payloads.review_row(payloads.feedback(2), ctx)],
    )

    within = await _row(session, seller.id, "fb000000000000000001")
    expired = await _row(session, seller.id, "fb000000000000000002")
    assert (within.status, within.needs_response) == ("pending_reply", False)
    assert (expired.status, expired.needs_response) == ("open", True)


async def test_identity_is_per_seller(session: AsyncSession) -> None:
    a, b = await factories.create_seller(session, "A"), await factories.create_seller(session, "B")
    item = payloads.feedback(1)

    for seller in (a, b):
        written = await repository.upsert_interactions(
            session, [payloads.review_row(item, SellerContext(seller.id, {}))]
        )
        assert written.created == 1


async def test_cursor_state_merges_keys(session: AsyncSession) -> None:
    seller = await factories.create_seller(session)

    await repository.merge_cursor_state(session, seller.id, "review", {"unanswered": 10})
    await repository.merge_cursor_state(session, seller.id, "review", {"answered": 5})
    await repository.merge_cursor_state(session, seller.id, "review", {"unanswered": 20})

    state = await repository.get_cursor_state(session, seller.id, "review")
    assert state == {"unanswered": 20, "answered": 5}
