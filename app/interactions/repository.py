"""Inbox queries. Every statement is scoped to one seller; lists are keyset-paginated so a page
never shifts while new items arrive."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    REAL,
    BigInteger,
    ColumnElement,
    Select,
    SmallInteger,
    and_,
    cast,
    func,
    literal,
    not_,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.interactions.models import ChatMessage, Interaction
from app.interactions.schemas import InteractionFilters, Sort

DUE_SOON = timedelta(hours=2)
INFINITY = cast(literal("infinity"), TIMESTAMP(timezone=True))


def tsquery(q: str) -> ColumnElement[Any]:
    """Russian web-search syntax ("quoted phrases", -exclusions, or): safe for any user input."""
    return func.websearch_to_tsquery("russian", q)


def conditions(
    seller_id: int, f: InteractionFilters, *, user_id: int, now: datetime
) -> list[ColumnElement[bool]]:
    i = Interaction
    where: list[ColumnElement[bool]] = [i.seller_id == seller_id]
    for column, values in (
        (i.channel, f.channel), (i.status, f.status), (i.priority, f.priority),
        (i.source, f.source), (i.intent, f.intent), (i.rating, f.rating),
    ):  # fmt: skip
        if values:
            where.append(column.in_(values))
    if f.needs_response is not None:
        where.append(i.needs_response.is_(f.needs_response))
    if f.nm_id is not None:
        where.append(i.nm_id == f.nm_id)
    if f.assignee == "me":
        where.append(i.assignee_id == user_id)
    elif f.assignee == "none":
        where.append(i.assignee_id.is_(None))
    elif f.assignee is not None:
        where.append(i.assignee_id == int(f.assignee))
    if f.sla is not None:
        where.append(_sla_condition(f.sla, now))
    if f.q:
        where.append(i.search_vector.op("@@")(tsquery(f.q)))
    return where


def _sla_condition(state: str, now: datetime) -> ColumnElement[bool]:
    i = Interaction
    waiting = and_(i.needs_response.is_(True), i.sla_due_at.is_not(None))
    if state == "overdue":
        return and_(waiting, i.sla_due_at < now)
    if state == "due_soon":
        return and_(waiting, i.sla_due_at >= now, i.sla_due_at < now + DUE_SOON)
    if state == "on_track":
        return and_(waiting, i.sla_due_at >= now + DUE_SOON)
    return not_(waiting)


def sla_state(row: Interaction, now: datetime) -> str:
    if not row.needs_response or row.sla_due_at is None:
        return "none"
    if row.sla_due_at < now:
        return "overdue"
    return "due_soon" if row.sla_due_at < now + DUE_SOON else "on_track"


def _ordered(
    stmt: Select[Any], sort: Sort, q: str | None, after: Sequence[Any] | None
) -> Select[Any]:
    i = Interaction
    if sort == "priority":
        if after is not None:
            rank, due, last_id = after
            due_key = INFINITY if due is None else literal(due, TIMESTAMP(timezone=True))
            bound = tuple_(literal(rank, SmallInteger), due_key, literal(last_id, BigInteger))
            stmt = stmt.where(tuple_(i.priority_rank, i.sla_sort_at, i.id) > bound)
        return stmt.order_by(i.priority_rank, i.sla_sort_at, i.id)
    if sort == "relevance":
        assert q is not None
        score = func.ts_rank_cd(i.search_vector, tsquery(q))
        if after is not None:
            bound = tuple_(cast(literal(after[0]), REAL), literal(after[1], BigInteger))
            stmt = stmt.where(tuple_(score, i.id) < bound)
        return stmt.add_columns(score.label("score")).order_by(score.desc(), i.id.desc())
    newest = sort == "newest"
    if after is not None:
        key = tuple_(i.occurred_at, i.id)
        stmt = stmt.where(key < tuple(after) if newest else key > tuple(after))
    if newest:
        return stmt.order_by(i.occurred_at.desc(), i.id.desc())
    return stmt.order_by(i.occurred_at.asc(), i.id.asc())


async def list_page(
    session: AsyncSession,
    where: list[ColumnElement[bool]],
    *,
    sort: Sort,
    q: str | None,
    after: Sequence[Any] | None,
    limit: int,
) -> list[tuple[Interaction, float | None]]:
    stmt = _ordered(select(Interaction).where(*where), sort, q, after).limit(limit)
    rows = (await session.execute(stmt)).all()
    return [(row[0], row[1] if sort == "relevance" else None) for row in rows]


def cursor_values(row: Interaction, sort: Sort, score: float | None) -> list[Any]:
    if sort == "priority":
        due = row.sla_due_at.isoformat() if row.sla_due_at else None
        return [row.priority_rank, due, row.id]
    if sort == "relevance":
        return [score, row.id]
    return [row.occurred_at.isoformat(), row.id]


async def counts(
    session: AsyncSession, where: list[ColumnElement[bool]]
) -> tuple[dict[str, int], dict[str, int]]:
    i = Interaction
    by_channel = await session.execute(
        select(i.channel, func.count()).where(*where).group_by(i.channel)
    )
    by_status = await session.execute(
        select(i.status, func.count()).where(*where).group_by(i.status)
    )
    return {row[0]: row[1] for row in by_channel}, {row[0]: row[1] for row in by_status}


async def get(session: AsyncSession, seller_id: int, interaction_id: int) -> Interaction | None:
    result = await session.execute(
        select(Interaction).where(
            Interaction.id == interaction_id, Interaction.seller_id == seller_id
        )
    )
    return result.scalar_one_or_none()


async def get_many(
    session: AsyncSession, seller_id: int, ids: Sequence[int], *, for_update: bool = False
) -> list[Interaction]:
    stmt = select(Interaction).where(Interaction.seller_id == seller_id, Interaction.id.in_(ids))
    if for_update:
        stmt = stmt.with_for_update()
    return list((await session.scalars(stmt.order_by(Interaction.id))).all())


async def messages(session: AsyncSession, seller_id: int, interaction_id: int) -> list[ChatMessage]:
    result = await session.scalars(
        select(ChatMessage)
        .where(ChatMessage.seller_id == seller_id, ChatMessage.interaction_id == interaction_id)
        .order_by(ChatMessage.sent_at, ChatMessage.id)
        .limit(500)
    )
    return list(result.all())


async def user_in_seller(session: AsyncSession, seller_id: int, user_id: int) -> bool:
    found = await session.scalar(
        select(User.id).where(User.id == user_id, User.seller_id == seller_id)
    )
    return found is not None


# --- the card's product context ------------------------------------------------------------


async def recent_on_product(
    session: AsyncSession, seller_id: int, nm_id: int, exclude_id: int, per_channel: int = 5
) -> list[Interaction]:
    """The newest items of each channel on this product: three index-ordered LIMIT scans."""
    i = Interaction
    parts = [
        select(i.id)
        .where(i.seller_id == seller_id, i.nm_id == nm_id, i.channel == channel, i.id != exclude_id)
        .order_by(i.occurred_at.desc())
        .limit(per_channel)
        for channel in ("review", "question", "chat")
    ]
    ids = select(union_all(*parts).subquery().c.id)
    result = await session.scalars(
        select(i).where(i.id.in_(ids)).order_by(i.channel, i.occurred_at.desc())
    )
    return list(result.all())


async def top_intents(
    session: AsyncSession, seller_id: int, nm_id: int, since: datetime, limit: int = 5
) -> list[tuple[str, int]]:
    """Typical complaints and questions: intents on this product (praise excluded)."""
    i = Interaction
    count = func.count()
    result = await session.execute(
        select(i.intent, count)
        .where(
            i.seller_id == seller_id,
            i.nm_id == nm_id,
            i.occurred_at >= since,
            i.intent.is_not(None),
            i.intent != "other",
            or_(i.channel != "review", i.rating <= 3),
        )
        .group_by(i.intent)
        .order_by(count.desc(), i.intent)
        .limit(limit)
    )
    return [(str(row[0]), int(row[1])) for row in result]


async def last_replies(
    session: AsyncSession, seller_id: int, nm_id: int, limit: int = 5
) -> list[tuple[int, str, datetime, str]]:
    """The seller's latest answers on this product (reviews and questions carry them)."""
    i = Interaction
    answer = i.extra["answer"]["text"].astext
    result = await session.execute(
        select(i.id, i.channel, i.occurred_at, answer)
        .where(
            i.seller_id == seller_id,
            i.nm_id == nm_id,
            i.channel.in_(("review", "question")),
            i.status.in_(("responded", "pending_reply")),
            answer.is_not(None),
            answer != "",
        )
        .order_by(i.occurred_at.desc())
        .limit(limit)
    )
    return [(row[0], row[1], row[2], row[3]) for row in result.all()]
