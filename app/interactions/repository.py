"""Inbox queries. Every statement is scoped to one seller; lists are keyset-paginated so a page
never shifts while new items arrive."""

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from cachetools import LRUCache
from pydantic import BaseModel
from sqlalchemy import (
    REAL,
    BigInteger,
    BindParameter,
    ColumnElement,
    CompoundSelect,
    Float,
    GenerativeSelect,
    Integer,
    ScalarSelect,
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
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import JSON, TIMESTAMP
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth.models import User
from app.core.statements import Precompiled, Rendered
from app.dispatch.models import OutboundReply
from app.dispatch.schemas import ReplyRead
from app.drafts.models import Draft
from app.drafts.schemas import DraftRead
from app.interactions import search
from app.interactions.models import (
    ANSWERED_CHANNELS,
    ANSWERED_STATUSES,
    CHANNELS,
    ChatMessage,
    Interaction,
)
from app.interactions.schemas import (
    ChatMessageRead,
    InteractionFilters,
    InteractionRead,
    InteractionSummary,
    Sort,
)

DUE_SOON = timedelta(hours=2)
INFINITY = cast(literal("infinity"), TIMESTAMP(timezone=True))


def tsquery(q: str | BindParameter[str]) -> ColumnElement[Any]:
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
    """The filters as SQL. Values are named bound parameters (`filter_values`), so filters of
    one shape (`filter_shape`) give one statement text, built once (`_listed`, `_ranked`).

    For the relevance window, `q` is left out (the window applies it with its time buckets) and
    the seller is written into the SQL: a generic plan that did not know it guessed half the
    rows and AND-ed a bitmap of all the seller's rows into every stage (80 ms each). Lists keep
    it a parameter: rendering it into their SQL cost ≈ 0.9 ms of CPU per page."""
    i = Interaction
    seller = bindparam("seller_id", seller_id, type_=BigInteger, literal_execute=relevance_window)
    where: list[ColumnElement[bool]] = [i.seller_id == seller]
    for column, values in (
        (i.channel, f.channel), (i.status, f.status), (i.priority, f.priority),
        (i.source, f.source), (i.intent, f.intent), (i.rating, f.rating),
    ):  # fmt: skip
        if values:
            where.append(column.in_(bindparam(column.key, list(values), expanding=True)))
    if f.needs_response is not None:
        where.append(i.needs_response.is_(f.needs_response))
    if f.nm_id is not None:
        where.append(i.nm_id == bindparam("nm_id", f.nm_id))
    if f.assignee == "none":
        where.append(i.assignee_id.is_(None))
    elif f.assignee is not None:
        assignee = user_id if f.assignee == "me" else int(f.assignee)
        where.append(i.assignee_id == bindparam("assignee_id", assignee))
    if f.sla is not None:
        where.append(_sla_condition(f.sla, now))
    if f.q and not relevance_window:
        where.append(i.search_vector.op("@@")(tsquery(bindparam("q", f.q))))
    return where


_LIST_FILTERS = ("channel", "status", "priority", "source", "intent", "rating")


def filter_shape(f: InteractionFilters) -> tuple[Any, ...]:
    """What decides the SQL text of `conditions(f)`, values aside: the key of cached statements.
    (A list's length does not: its IN is expanded when the statement runs.)"""
    assignee = None if f.assignee is None else f.assignee == "none"
    lists = tuple(bool(getattr(f, name)) for name in _LIST_FILTERS)
    return (*lists, f.needs_response, f.nm_id is not None, assignee, f.sla, f.q is not None)


def filter_values(
    seller_id: int, f: InteractionFilters, *, user_id: int, now: datetime
) -> dict[str, Any]:
    """The values of the named parameters `conditions(f)` binds (and a few it may not use)."""
    values: dict[str, Any] = {"seller_id": seller_id, "nm_id": f.nm_id, "q": f.q}
    for name in _LIST_FILTERS:
        values[name] = getattr(f, name)
    if f.assignee not in (None, "none"):
        values["assignee_id"] = user_id if f.assignee == "me" else int(f.assignee)
    if f.sla is not None:
        values |= {"sla_now": now, "sla_soon": now + DUE_SOON}
    return values


def _sla_condition(state: str, now: datetime) -> ColumnElement[bool]:
    i = Interaction
    waiting = and_(i.needs_response.is_(True), i.sla_due_at.is_not(None))
    at = bindparam("sla_now", now, type_=TIMESTAMP(timezone=True))
    soon = bindparam("sla_soon", now + DUE_SOON, type_=TIMESTAMP(timezone=True))
    if state == "overdue":
        return and_(waiting, i.sla_due_at < at)
    if state == "due_soon":
        return and_(waiting, i.sla_due_at >= at, i.sla_due_at < soon)
    if state == "on_track":
        return and_(waiting, i.sla_due_at >= soon)
    return not_(waiting)


def sla_state(needs_response: bool, due: datetime | None, now: datetime) -> str:
    if not needs_response or due is None:
        return "none"
    if due < now:
        return "overdue"
    return "due_soon" if due < now + DUE_SOON else "on_track"


def _ordered(stmt: Select[Any], sort: Sort, after: Sequence[Any] | None) -> Select[Any]:
    """Sorted, after the cursor's position (named parameters: `_after_values`)."""
    i = Interaction
    if sort == "priority":
        if after is not None:
            due = bindparam("after_due", type_=TIMESTAMP(timezone=True))
            rank = bindparam("after_rank", type_=SmallInteger)
            bound = tuple_(rank, INFINITY if after[1] is None else due, _AFTER_ID)
            stmt = stmt.where(tuple_(i.priority_rank, i.sla_sort_at, i.id) > bound)
        return stmt.order_by(i.priority_rank, i.sla_sort_at, i.id)
    newest = sort == "newest"
    if after is not None:
        key = tuple_(i.occurred_at, i.id)
        bound = tuple_(bindparam("after_at", type_=TIMESTAMP(timezone=True)), _AFTER_ID)
        stmt = stmt.where(key < bound if newest else key > bound)
    if newest:
        return stmt.order_by(i.occurred_at.desc(), i.id.desc())
    return stmt.order_by(i.occurred_at.asc(), i.id.asc())


_AFTER_ID = bindparam("after_id", type_=BigInteger)


def _after_values(sort: Sort, after: Sequence[Any]) -> dict[str, Any]:
    if sort == "priority":
        return {"after_rank": after[0], "after_due": after[1], "after_id": after[2]}
    return {"after_at": after[0], "after_id": after[1]}


# The inbox row's columns, read as plain rows: no ORM identity map for a 50-row page.
_LIST_COLUMNS = [
    Interaction.__table__.c[name]
    for name in (*InteractionSummary.model_fields.keys() - {"sla_state"}, "priority_rank")
]


# Relevance ranks the newest SEARCH_WINDOW.size matches, not all of them: a common word matches
# a quarter of a big seller's rows, and ranking each costs a heap visit (seconds at 1M rows). The
# window is read newest hours first (app/interactions/search.py). Its newest id when the first
# page was read (`as_of`) travels in the cursor, so later pages rank the same window while new
# items arrive; `sort=newest` reads every match.
SEARCH_WINDOW = search.Window()


# List and search statements, built once per shape of the filters (`filter_shape`) and of the
# rest; executed with each request's values (`filter_values`). A page of 50 has 24 columns, and
# the search twenty stages: building them cost more CPU than Postgres spends running them.
_STATEMENTS: LRUCache[tuple[Any, ...], Rendered] = LRUCache(maxsize=512)


def _statement(key: tuple[Any, ...], build: Callable[[], Select[Any]]) -> Rendered:
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        stmt = _STATEMENTS[key] = Rendered(build())
    return stmt


def _ranked(
    where: Callable[[], list[ColumnElement[bool]]],
    shape: tuple[Any, ...],
    after: Sequence[Any] | None,
    *,
    seller_id: int,
    now: datetime,
    window: search.Window,
) -> tuple[Rendered, dict[str, Any]]:
    stages = search.stages(seller_id, search.hour_of(now))
    kinds = tuple(stage.kind for stage in stages)
    paged = after is not None
    key = (shape, "relevance", paged, kinds)
    stmt = _statement(key, lambda: _ranked_statement(where(), paged, kinds))
    params = search.stage_params(stages, window)
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


def _listed(
    where: Callable[[], list[ColumnElement[bool]]],
    shape: tuple[Any, ...],
    sort: Sort,
    after: Sequence[Any] | None,
    limit: int,
) -> tuple[Rendered, dict[str, Any]]:
    def build() -> Select[Any]:
        limited = _ordered(select(*_LIST_COLUMNS).where(*where()), sort, after)
        # In the SQL text: a LIMIT parameter can turn a generic plan into a sort, and one
        # rendered per execution (literal_execute) costs a pass over the SQL each time.
        return limited.limit(literal_column(str(int(limit))))

    nulls = after is not None and sort == "priority" and after[1] is None
    stmt = _statement((shape, sort, after is None, nulls, limit), build)
    return stmt, {} if after is None else _after_values(sort, after)


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

    def where() -> list[ColumnElement[bool]]:
        return conditions(seller_id, filters, user_id=user_id, now=now, relevance_window=relevance)

    shape = filter_shape(filters)
    if relevance:
        stmt, params = _ranked(
            where, shape, after, seller_id=seller_id, now=now, window=window or SEARCH_WINDOW
        )
    else:
        stmt, params = _listed(where, shape, sort, after, limit)
    params |= filter_values(seller_id, filters, user_id=user_id, now=now)
    params["limit"] = limit
    # Driver rows: no ORM result machinery for plain columns.
    result = await stmt.execute(db, params)
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


# --- the card ------------------------------------------------------------------------------


# The context builders take values or SQL expressions. Their selects correlate every table but
# the one they read, so inside the card's statement they read the card's own row.
def _recent_on_product(
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
        for channel in ("review", "question", "chat")
    ]
    return union_all(*parts)


# Typical complaints are read from the product's newest items, not all of them: a best-seller
# has tens of thousands, and the newest thousand say what buyers are saying now.
INTENT_SAMPLE = 1000


def _top_intents(seller_id: Any, nm_id: Any, since: Any, limit: int = 5) -> Select[Any]:
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


def _last_replies(seller_id: Any, nm_id: Any, limit: int = 5) -> Select[Any]:
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
    """The statement's rows as one JSON array ([] when none). The aggregate reads its subquery
    in the subquery's order (ORDER BY and LIMIT keep it from being flattened)."""
    rows = stmt.subquery()
    aggregated = func.coalesce(func.json_agg(rows.table_valued()), sql_text("'[]'::json"))
    return select(aggregated.cast(JSON)).scalar_subquery()


def _read_columns(model: type[Any], schema: type[BaseModel]) -> list[ColumnElement[Any]]:
    """The model's columns that the read schema shows, in the schema's order."""
    table = model.__table__
    return [table.c[name] for name in schema.model_fields if name in table.c]


# The card's own columns: what `InteractionRead` shows (`sla_state` is computed).
CARD_COLUMNS = tuple(name for name in InteractionRead.model_fields if name != "sla_state")
MESSAGES_LIMIT = 500

LinksQuery = Callable[[Any, Any], GenerativeSelect]


def card_statement(links: LinksQuery) -> Precompiled:
    """The whole card in one statement: the interaction's columns (no row when it is not the
    seller's) and, as JSON arrays, its chat messages, links (`links(seller_id, id)` builds their
    query), product context, last draft and latest outbox entry: six round trips otherwise.
    The subqueries are correlated to the row (its id and product), each scoped to the seller too.
    Built once; a card binds `seller_id`, `row_id` and `since`."""
    seller_id = bindparam("seller_id", type_=BigInteger)
    row_id = bindparam("row_id", type_=BigInteger)
    since = bindparam("since", type_=TIMESTAMP(timezone=True))
    card = Interaction.__table__.alias("card")
    m, o = ChatMessage, OutboundReply
    parts = {
        "messages": select(*_read_columns(m, ChatMessageRead))
        .where(m.seller_id == seller_id, m.interaction_id == card.c.id, card.c.channel == "chat")
        .order_by(m.sent_at, m.id)
        .limit(MESSAGES_LIMIT)
        .correlate(card),
        "links": links(seller_id, card.c.id),
        "recent": _recent_on_product(seller_id, card.c.nm_id, card.c.id),
        "top_intents": _top_intents(seller_id, card.c.nm_id, since),
        "last_replies": _last_replies(seller_id, card.c.nm_id),
        "draft": select(*_read_columns(Draft, DraftRead))
        .where(Draft.seller_id == seller_id, Draft.interaction_id == card.c.id)
        .correlate(card),
        "outbox": select(*_read_columns(o, ReplyRead))
        .where(o.seller_id == seller_id, o.interaction_id == card.c.id)
        .order_by(o.id.desc())
        .limit(1)
        .correlate(card),
    }
    statement = select(
        *(card.c[name] for name in CARD_COLUMNS),
        *(_json_rows(query).label(name) for name, query in parts.items()),
    ).where(card.c.id == row_id, card.c.seller_id == seller_id)
    return Precompiled(statement, ("seller_id", "row_id", "since"))


async def card(
    db: AsyncConnection,
    statement: Precompiled,
    seller_id: int,
    interaction_id: int,
    since: datetime,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]] | None:
    """The interaction's columns and the card's JSON arrays by name; None when the interaction
    is not the seller's."""
    row = await statement.first(db, seller_id=seller_id, row_id=interaction_id, since=since)
    if row is None:
        return None
    return {name: row.pop(name) for name in CARD_COLUMNS}, row
