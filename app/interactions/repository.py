"""Inbox queries. Every statement is scoped to one seller; lists are keyset-paginated so a page
never shifts while new items arrive."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    REAL,
    BigInteger,
    BindParameter,
    ColumnElement,
    CompoundSelect,
    Float,
    Integer,
    Select,
    SmallInteger,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth.models import User
from app.core.statements import Templates
from app.interactions import search
from app.interactions.models import (
    ANSWERED_CHANNELS,
    ANSWERED_STATUSES,
    CHANNELS,
    ChatMessage,
    Interaction,
)
from app.interactions.schemas import InteractionFilters, InteractionSummary, SlaState, Sort

DUE_SOON = timedelta(hours=2)
INFINITY = cast(literal("infinity"), TIMESTAMP(timezone=True))


def tsquery(q: str) -> ColumnElement[Any]:
    """Russian web-search syntax ("quoted phrases", -exclusions, or): safe for any user input.

    A scalar subquery, parsed once per statement: as a plain call inside a prepared statement's
    generic plan, Postgres parsed and stemmed the text again for every row it rechecked or
    ranked (a phrase search took twice as long)."""
    return select(func.websearch_to_tsquery("russian", q)).scalar_subquery()


def conditions(
    seller_id: int,
    f: InteractionFilters,
    *,
    user_id: int,
    now: datetime,
    relevance_window: bool = False,
) -> list[ColumnElement[bool]]:
    """The filters as SQL, every value a bound parameter.

    For the relevance window, `q` is left out (the window applies it with its time buckets) and
    the seller is written into the SQL when the statement runs (`literal_execute`): a generic
    plan that did not know it guessed half the rows and AND-ed a bitmap of all the seller's
    rows into every stage (80 ms each)."""
    i = Interaction
    seller = bindparam("seller_id", seller_id, BigInteger, literal_execute=relevance_window)
    where: list[ColumnElement[bool]] = [i.seller_id == seller]
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
    if f.assignee == "none":
        where.append(i.assignee_id.is_(None))
    elif f.assignee is not None:
        where.append(i.assignee_id == (user_id if f.assignee == "me" else int(f.assignee)))
    if f.sla is not None:
        where.append(_sla_condition(f.sla, now))
    if f.q and not relevance_window:
        where.append(i.search_vector.op("@@")(tsquery(f.q)))
    return where


def _sla_condition(state: SlaState, now: datetime) -> ColumnElement[bool]:
    i = Interaction
    waiting = and_(i.needs_response.is_(True), i.sla_due_at.is_not(None))
    if state == "overdue":
        return and_(waiting, i.sla_due_at < now)
    if state == "due_soon":
        return and_(waiting, i.sla_due_at >= now, i.sla_due_at < now + DUE_SOON)
    if state == "on_track":
        return and_(waiting, i.sla_due_at >= now + DUE_SOON)
    return not_(waiting)


def _after(sort: Sort, after: Sequence[Any]) -> ColumnElement[bool]:
    """The rows after the cursor's position in the sort's order."""
    i = Interaction
    if sort == "priority":
        rank, due, last_id = after
        at = INFINITY if due is None else literal(due, TIMESTAMP(timezone=True))
        bound = tuple_(literal(rank, SmallInteger), at, literal(last_id, BigInteger))
        return tuple_(i.priority_rank, i.sla_sort_at, i.id) > bound
    key = tuple_(i.occurred_at, i.id)
    values = tuple(after)  # bound with the columns' types
    return key < values if sort == "newest" else key > values


_ORDER: dict[str, tuple[Any, ...]] = {
    "priority": (Interaction.priority_rank, Interaction.sla_sort_at, Interaction.id),
    "newest": (Interaction.occurred_at.desc(), Interaction.id.desc()),
    "oldest": (Interaction.occurred_at.asc(), Interaction.id.asc()),
}


def _inline(value: int) -> BindParameter[int]:
    """A LIMIT written into the SQL when the statement runs: as a parameter it can turn a
    prepared statement's generic plan into a sort."""
    return bindparam(None, value, Integer, literal_execute=True)


# The inbox row's columns, read as plain rows: no ORM identity map for a 50-row page.
_LIST_COLUMNS = [
    Interaction.__table__.c[name]
    for name in (*(f for f in InteractionSummary.model_fields if f != "sla_state"), "priority_rank")
]


# Relevance ranks the newest SEARCH_WINDOW.size matches, not all of them: a common word matches
# a quarter of a big seller's rows, and ranking each costs a heap visit (seconds at 1M rows). The
# window is read newest hours first (app/interactions/search.py). Its newest id when the first
# page was read (`as_of`) travels in the cursor, so later pages rank the same window while new
# items arrive; `sort=newest` reads every match.
SEARCH_WINDOW = search.Window()

# The list's and the search's statements, built once per structure (app/core/statements.py).
TEMPLATES = Templates()


def _ranked(
    where: list[ColumnElement[bool]],
    after: Sequence[Any] | None,
    *,
    q: str,
    seller_id: int,
    limit: int,
    now: datetime,
    window: search.Window,
) -> tuple[Select[Any], dict[str, Any]]:
    """The relevance page's statement and the values of its named parameters."""
    stages = search.stages(seller_id, search.hour_of(now))
    kinds, paged = tuple(stage.kind for stage in stages), after is not None
    # Twenty stages cost more CPU to build than Postgres spends running them: a template per
    # structure of the conditions, paging and stage kinds; the stages' values are named.
    stmt, params = TEMPLATES.get(
        where, lambda: _ranked_statement(where, paged, kinds), paged, kinds
    )
    params |= search.stage_params(stages, window) | {"q": q, "seller_id": seller_id}
    params["limit"] = limit
    if after is not None:
        params |= {"after_score": after[0], "after_id": after[1], "as_of": after[2]}
    return stmt, params


def _ranked_statement(
    where: list[ColumnElement[bool]], paged: bool, kinds: Sequence[search.Kind]
) -> Select[Any]:
    i = Interaction
    # `id + 0`: a filter on the rows a stage finds, never an index condition. A bare `id <= as_of`
    # let a generic plan AND a bitmap of the whole primary key into every stage; written into
    # the SQL instead, it made every cursor a new statement, planned afresh (≈ 5 ms) each time.
    as_of = bindparam("as_of", type_=BigInteger)
    bounded = [*where, (i.id + literal_column("0")) <= as_of] if paged else where
    search_query = search.parsed(bindparam("q", type_=Text))
    # The window carries ids and vectors only, ranked once it is cut to size (not every row a
    # stage over-reads); the page's rows are read by id at the end.
    seller = bindparam("seller_id", type_=BigInteger, literal_execute=True)
    newest = search.newest(
        bounded, search_query, [i.id, i.occurred_at, i.search_vector], kinds=kinds, seller_id=seller
    ).subquery("search_window")
    query = select(search_query.c.q).scalar_subquery()
    scored = select(
        newest.c.id, func.ts_rank_cd(newest.c.search_vector, query).label("score")
    ).subquery("scored")
    w = scored.c
    ranked = select(w.id, w.score, (as_of if paged else func.max(w.id).over()).label("as_of"))
    if paged:
        after_score = cast(bindparam("after_score", type_=Float), REAL)
        bound = tuple_(after_score, bindparam("after_id", type_=BigInteger))
        ranked = ranked.where(tuple_(w.score, w.id) < bound)
    page = (
        ranked.order_by(w.score.desc(), w.id.desc())
        .limit(bindparam("limit", type_=Integer))
        .subquery("page")
    )
    return (
        select(*_LIST_COLUMNS, page.c.score, page.c.as_of)
        .join_from(page, i, i.id == page.c.id)
        .order_by(page.c.score.desc(), page.c.id.desc())
    )


async def list_page(
    db: AsyncConnection,
    seller_id: int,
    filters: InteractionFilters,
    *,
    user_id: int,
    sort: Sort,
    after: Sequence[Any] | None,
    limit: int,
    now: datetime,
    window: search.Window | None = None,
) -> list[dict[str, Any]]:
    """Rows as dicts (with `score` and `as_of` for relevance), ready for `InteractionSummary`.
    Relevance (`filters.q` required) ranks the newest `window.size` matches (SEARCH_WINDOW)."""
    relevance = sort == "relevance"
    where = conditions(seller_id, filters, user_id=user_id, now=now, relevance_window=relevance)
    params: dict[str, Any] = {}
    if relevance:
        assert filters.q is not None
        stmt, params = _ranked(
            where, after, q=filters.q, seller_id=seller_id, limit=limit, now=now,
            window=window or SEARCH_WINDOW,
        )  # fmt: skip
    else:
        if after is not None:
            where.append(_after(sort, after))
        order, top = _ORDER[sort], _inline(limit)
        stmt, params = TEMPLATES.get(
            [*where, top],
            lambda: select(*_LIST_COLUMNS).where(*where).order_by(*order).limit(top),
            sort,
        )
    result = await db.execute(stmt, params)
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
        # In id order (the rows are locked as the sort emits them), the one order every
        # transaction locks several interactions in; FOR NO KEY UPDATE leaves the FOR KEY SHARE
        # locks of referencing inserts (links, events) free (app/dispatch/repository.py).
        stmt = stmt.with_for_update(key_share=True)
    return list((await session.scalars(stmt.order_by(Interaction.id))).all())


async def user_in_seller(session: AsyncSession, seller_id: int, user_id: int) -> bool:
    found = await session.scalar(
        select(User.id).where(User.id == user_id, User.seller_id == seller_id)
    )
    return found is not None


# --- product context (the card's, the drafts') ------------------------------------------------


# The context builders take values or SQL expressions. Their selects correlate every table but
# the one they read, so inside the card's statement (app/cards) they read the card's own row.
def recent_on_product(
    seller_id: Any, nm_id: Any, exclude_id: Any, per_channel: int = 5
) -> CompoundSelect[Any]:
    """The newest items of each channel on this product: three LIMIT scans, each an exact range
    of ix_interactions_seller_nm_channel."""
    i = Interaction
    columns = (i.id, i.channel, i.occurred_at, i.status, i.rating, i.intent, i.text, i.pros,
               i.cons, i.product_name)  # fmt: skip
    parts = [
        select(*columns)
        .where(i.seller_id == seller_id, i.nm_id == nm_id, i.channel == channel, i.id != exclude_id)
        .order_by(i.occurred_at.desc())
        .limit(per_channel)
        .correlate_except(i)
        for channel in CHANNELS
    ]
    return union_all(*parts)


# Typical complaints are read from the product's newest items, not all of them: a best-seller
# has tens of thousands, and the newest thousand say what buyers are saying now.
INTENT_SAMPLE = 1000


def top_intents_query(seller_id: Any, nm_id: Any, since: Any, limit: int = 5) -> Select[Any]:
    """Typical complaints and questions: intents on this product (praise excluded)."""
    i = Interaction
    # The newest of all channels, merged from each channel's newest: index-only range scans of
    # ix_interactions_seller_nm_channel, which carries intent and rating.
    per_channel = union_all(
        *(
            select(i.intent, i.channel, i.rating, i.occurred_at)
            .where(
                i.seller_id == seller_id,
                i.nm_id == nm_id,
                i.channel == channel,
                i.occurred_at >= since,
            )
            .order_by(i.occurred_at.desc())
            .limit(INTENT_SAMPLE)
            .correlate_except(i)
            for channel in CHANNELS
        )
    ).subquery()
    p = per_channel.c
    newest = (
        select(p.intent, p.channel, p.rating)
        .order_by(p.occurred_at.desc())
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


def last_replies_query(seller_id: Any, nm_id: Any, limit: int = 5) -> Select[Any]:
    """The seller's latest answers on this product (reviews and questions carry them). Inside
    the card's statement it reads ix_interactions_seller_nm_answered, whose predicate it states:
    the product's newest items are mostly unanswered, thousands on a best-seller."""
    i = Interaction
    answer = i.extra["answer"]["text"].astext
    return (
        select(i.id.label("interaction_id"), i.channel, i.occurred_at, answer.label("text"))
        .where(
            i.seller_id == seller_id,
            i.nm_id == nm_id,
            i.channel.in_(ANSWERED_CHANNELS),
            i.status.in_(ANSWERED_STATUSES),
            answer.is_not(None),
            answer != "",
        )
        .order_by(i.occurred_at.desc())
        .limit(limit)
        .correlate_except(i)
    )


async def chat_messages(
    session: AsyncSession, seller_id: int, interaction_id: int, *, limit: int
) -> list[tuple[str, str | None]]:
    """(direction, text) of a chat's newest `limit` messages, newest first."""
    result = await session.execute(
        select(ChatMessage.direction, ChatMessage.text)
        .where(ChatMessage.seller_id == seller_id, ChatMessage.interaction_id == interaction_id)
        .order_by(ChatMessage.sent_at.desc(), ChatMessage.id.desc())
        .limit(limit)
    )
    return [(direction, text) for direction, text in result]


async def top_intents(
    session: AsyncSession, seller_id: int, nm_id: int, since: datetime
) -> list[tuple[str, int]]:
    result = await session.execute(top_intents_query(seller_id, nm_id, since))
    return [(str(row[0]), int(row[1])) for row in result]


async def last_replies(
    session: AsyncSession, seller_id: int, nm_id: int
) -> list[tuple[int, str, datetime, str]]:
    result = await session.execute(last_replies_query(seller_id, nm_id))
    return [(row[0], row[1], row[2], row[3]) for row in result.all()]
