"""Inbox queries. Every statement is scoped to one seller; lists are keyset-paginated so a page
never shifts while new items arrive."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    REAL,
    BigInteger,
    ColumnElement,
    CompoundSelect,
    GenerativeSelect,
    ScalarSelect,
    Select,
    SmallInteger,
    and_,
    bindparam,
    cast,
    func,
    literal,
    not_,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import JSON, TIMESTAMP
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.dispatch.models import OutboundReply
from app.drafts.models import Draft
from app.interactions.models import ChatMessage, Interaction
from app.interactions.schemas import InteractionFilters, InteractionSummary, Sort

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


def sla_state(needs_response: bool, due: datetime | None, now: datetime) -> str:
    if not needs_response or due is None:
        return "none"
    if due < now:
        return "overdue"
    return "due_soon" if due < now + DUE_SOON else "on_track"


def _ordered(stmt: Select[Any], sort: Sort, after: Sequence[Any] | None) -> Select[Any]:
    i = Interaction
    if sort == "priority":
        if after is not None:
            rank, due, last_id = after
            due_key = INFINITY if due is None else literal(due, TIMESTAMP(timezone=True))
            bound = tuple_(literal(rank, SmallInteger), due_key, literal(last_id, BigInteger))
            stmt = stmt.where(tuple_(i.priority_rank, i.sla_sort_at, i.id) > bound)
        return stmt.order_by(i.priority_rank, i.sla_sort_at, i.id)
    newest = sort == "newest"
    if after is not None:
        key = tuple_(i.occurred_at, i.id)
        stmt = stmt.where(key < tuple(after) if newest else key > tuple(after))
    if newest:
        return stmt.order_by(i.occurred_at.desc(), i.id.desc())
    return stmt.order_by(i.occurred_at.asc(), i.id.asc())


# The inbox row's columns, read as plain rows: no ORM identity map for a 50-row page.
_LIST_COLUMNS = [
    Interaction.__table__.c[name]
    for name in (*InteractionSummary.model_fields.keys() - {"sla_state"}, "priority_rank")
]


# Relevance ranks the newest SEARCH_WINDOW matches, not all of them: a common word matches a
# quarter of a big seller's rows, and ranking each costs a heap visit (seconds at 1M rows).
# The window is read newest-first through the (seller_id, occurred_at) index. Its newest id when
# the first page was read (`as_of`) travels in the cursor, so later pages rank the same window
# while new items arrive; `sort=newest` reads every match.
SEARCH_WINDOW = 500


def _ranked(
    where: list[ColumnElement[bool]], q: str, after: Sequence[Any] | None, limit: int
) -> Select[Any]:
    i = Interaction
    bounded = [*where, i.id <= after[2]] if after is not None else where
    window = (
        select(*_LIST_COLUMNS, i.search_vector)
        .where(*bounded)
        .order_by(i.occurred_at.desc(), i.id.desc())
        .limit(SEARCH_WINDOW)
        .subquery("search_window")
    )
    w = window.c
    score = func.ts_rank_cd(w.search_vector, tsquery(q))
    as_of = func.max(w.id).over() if after is None else literal(after[2], BigInteger)
    stmt = select(*(w[c.name] for c in _LIST_COLUMNS), score.label("score"), as_of.label("as_of"))
    if after is not None:
        bound = tuple_(cast(literal(after[0]), REAL), literal(after[1], BigInteger))
        stmt = stmt.where(tuple_(score, w.id) < bound)
    return stmt.order_by(score.desc(), w.id.desc()).limit(limit)


async def list_page(
    session: AsyncSession,
    where: list[ColumnElement[bool]],
    *,
    sort: Sort,
    q: str | None,
    after: Sequence[Any] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Rows as dicts (with `score` and `as_of` for relevance), ready for `InteractionSummary`."""
    if sort == "relevance":
        assert q is not None
        stmt = _ranked(where, q, after, limit)
    else:
        stmt = _ordered(select(*_LIST_COLUMNS).where(*where), sort, after).limit(limit)
    # Core execution on the session's connection: no ORM result machinery for plain columns.
    result = await (await session.connection()).execute(stmt)
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]


def cursor_values(row: dict[str, Any], sort: Sort) -> list[Any]:
    if sort == "priority":
        due = row["sla_due_at"].isoformat() if row["sla_due_at"] else None
        return [row["priority_rank"], due, row["id"]]
    if sort == "relevance":
        return [row["score"], row["id"], row["as_of"]]
    return [row["occurred_at"].isoformat(), row["id"]]


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


# The context builders take values or bound parameters (`_card_extras` binds them per call).
def _recent_on_product(
    seller_id: Any, nm_id: Any, exclude_id: Any, per_channel: int = 5
) -> CompoundSelect[Any]:
    """The newest items of each channel on this product: three index-ordered LIMIT scans."""
    i = Interaction
    columns = (i.id, i.channel, i.occurred_at, i.status, i.rating, i.intent, i.text, i.pros,
               i.cons, i.product_name)  # fmt: skip
    parts = [
        select(*columns)
        .where(i.seller_id == seller_id, i.nm_id == nm_id, i.channel == channel, i.id != exclude_id)
        .order_by(i.occurred_at.desc())
        .limit(per_channel)
        for channel in ("review", "question", "chat")
    ]
    return union_all(*parts)


# Typical complaints are read from the product's newest items, not all of them: a best-seller
# has tens of thousands, and the newest thousand say what buyers are saying now.
INTENT_SAMPLE = 1000


def _top_intents(seller_id: Any, nm_id: Any, since: Any, limit: int = 5) -> Select[Any]:
    """Typical complaints and questions: intents on this product (praise excluded)."""
    i = Interaction
    newest = (
        select(i.intent, i.channel, i.rating)
        .where(i.seller_id == seller_id, i.nm_id == nm_id, i.occurred_at >= since)
        .order_by(i.occurred_at.desc())
        .limit(INTENT_SAMPLE)
        .subquery()
    )
    n = newest.c
    count = func.count().label("count")
    return (
        select(n.intent, count)
        .where(
            n.intent.is_not(None), n.intent != "other", or_(n.channel != "review", n.rating <= 3)
        )
        .group_by(n.intent)
        .order_by(count.desc(), n.intent)
        .limit(limit)
    )


def _last_replies(seller_id: Any, nm_id: Any, limit: int = 5) -> Select[Any]:
    """The seller's latest answers on this product (reviews and questions carry them)."""
    i = Interaction
    answer = i.extra["answer"]["text"].astext
    return (
        select(i.id.label("interaction_id"), i.channel, i.occurred_at, answer.label("text"))
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


async def top_intents(
    session: AsyncSession, seller_id: int, nm_id: int, since: datetime
) -> list[tuple[str, int]]:
    result = await session.execute(_top_intents(seller_id, nm_id, since))
    return [(str(row[0]), int(row[1])) for row in result]


async def last_replies(
    session: AsyncSession, seller_id: int, nm_id: int
) -> list[tuple[int, str, datetime, str]]:
    result = await session.execute(_last_replies(seller_id, nm_id))
    return [(row[0], row[1], row[2], row[3]) for row in result.all()]


def _json_rows(stmt: GenerativeSelect) -> ScalarSelect[Any]:
    rows = stmt.subquery()
    aggregated = func.coalesce(func.json_agg(rows.table_valued()), sql_text("'[]'::json"))
    return select(aggregated.cast(JSON)).scalar_subquery()


def _card_extras() -> Select[Any]:
    """The card's product context, last draft and latest outbox entry as one statement of JSON
    arrays (five round trips otherwise). Built once: a card binds only its parameters, so no
    statement is constructed or cache-keyed per request."""
    seller_id = bindparam("seller_id", type_=BigInteger)
    nm_id = bindparam("nm_id", type_=BigInteger)
    row_id = bindparam("row_id", type_=BigInteger)
    since = bindparam("since", type_=TIMESTAMP(timezone=True))
    parts = {
        "recent": _recent_on_product(seller_id, nm_id, row_id),
        "top_intents": _top_intents(seller_id, nm_id, since),
        "last_replies": _last_replies(seller_id, nm_id),
        "draft": select(Draft).where(Draft.interaction_id == row_id),
        "outbox": select(OutboundReply)
        .where(OutboundReply.seller_id == seller_id, OutboundReply.interaction_id == row_id)
        .order_by(OutboundReply.id.desc())
        .limit(1),
    }
    return select(*(_json_rows(query).label(name) for name, query in parts.items()))


_CARD_EXTRAS = _card_extras()


async def card_extras(
    session: AsyncSession, row: Interaction, since: datetime
) -> dict[str, list[dict[str, Any]]]:
    nm_id = row.nm_id if row.nm_id is not None else -1
    params = {"seller_id": row.seller_id, "nm_id": nm_id, "row_id": row.id, "since": since}
    result = await session.execute(_CARD_EXTRAS, params)
    return dict(result.one()._mapping)
