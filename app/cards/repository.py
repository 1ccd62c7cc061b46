"""The card's and the timeline's SQL: each one statement, one round trip, built once.

Both read several domains' tables (interactions, chat messages, links, drafts, the outbox), so
they live here, above the domains, and use the domains' own query builders where there is one.
Every part is scoped to the seller.

Each statement is a plain SQLAlchemy statement, built at import and executed with its few
parameters: SQLAlchemy compiles it once (its compiled cache; a statement object memoizes its
cache key) and asyncpg prepares it once per connection. Every other value in it is written into
the SQL when it runs (`literal_execute`), so the prepared statement's generic plan sees the
constants its plan depends on: a partial index's predicate, each channel's index range, the
LIMITs.
"""

from collections.abc import Collection
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    CompoundSelect,
    GenerativeSelect,
    Numeric,
    ScalarSelect,
    Select,
    String,
    and_,
    bindparam,
    cast,
    exists,
    extract,
    func,
    literal,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import JSON, TIMESTAMP
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import visitors
from sqlalchemy.types import TypeEngine

from app.dispatch.models import OutboundReply
from app.dispatch.schemas import ReplyRead
from app.drafts.models import Draft
from app.drafts.schemas import DraftRead
from app.interactions import repository as interactions_repository
from app.interactions.models import ChatMessage, Interaction
from app.interactions.schemas import ChatMessageRead, InteractionRead
from app.links import repository as links_repository
from app.links import service as links_service
from app.links.models import LinkCandidate

S = TypeVar("S", bound=GenerativeSelect)


def _bound_only(statement: S, params: Collection[str]) -> S:
    """The statement with every value but `params` written into the SQL when it runs."""

    def inline(bind: Any) -> None:
        if bind.key not in params:
            bind.literal_execute = True

    return visitors.cloned_traverse(statement, {}, {"bindparam": inline})


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


# --- the card ------------------------------------------------------------------------------

# The card's own columns: what `InteractionRead` shows (`sla_state` is computed).
CARD_COLUMNS = tuple(name for name in InteractionRead.model_fields if name != "sla_state")
MESSAGES_LIMIT = 500


def _card_statement() -> Select[Any]:
    """The whole card in one statement: the interaction's columns (no row when it is not the
    seller's) and, as JSON arrays, its chat messages, links (as `GET …/links` shows them by
    default), product context, last draft and latest outbox entry: six round trips otherwise.
    The subqueries are correlated to the row (its id and product), each scoped to the seller
    too. A card binds `seller_id`, `row_id` and `since`."""
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
        "links": links_service.links_query(seller_id, card.c.id),
        "recent": interactions_repository.recent_on_product(seller_id, card.c.nm_id, card.c.id),
        "top_intents": interactions_repository.top_intents_query(seller_id, card.c.nm_id, since),
        "last_replies": interactions_repository.last_replies_query(seller_id, card.c.nm_id),
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
    return _bound_only(statement, ("seller_id", "row_id", "since"))


CARD = _card_statement()


async def card(
    db: AsyncConnection, seller_id: int, interaction_id: int, since: datetime
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]] | None:
    """The interaction's columns and the card's JSON arrays by name; None when the interaction
    is not the seller's."""
    params = {"seller_id": seller_id, "row_id": interaction_id, "since": since}
    found = (await db.execute(CARD, params)).mappings().first()
    if found is None:
        return None
    row = dict(found)
    return {name: row.pop(name) for name in CARD_COLUMNS}, row


# --- the timeline --------------------------------------------------------------------------

TIMELINE_LIMIT = 50  # related items per timeline scope, nearest in time
# What the rows carry for a timeline item (`text_preview` as the links show it).
TIMELINE_COLUMNS = (
    "id", "channel", "occurred_at", "status", "rating", "text_preview", "customer_name",
)  # fmt: skip
# A stored link's own columns (null on the other rows).
LINK_COLUMNS: dict[str, TypeEngine[Any]] = {
    "level": String(1),
    "deterministic": Boolean(),
    "confidence": Numeric(4, 3, asdecimal=False),
    "match_reason": String(64),
}


def _timeline_statement() -> CompoundSelect[Any]:
    """The timeline of `row_id` in one statement, every row tagged with its `kind`: `self` (no
    row when the interaction is not the seller's), the scope's related items (`TIMELINE_LIMIT`
    + 1 of them, nearest in time, so a cut shows) and the stored links in the medium and high
    bands with their target's columns (`link`).

    The scopes, most specific first: customer+order, customer, product (±30 days). A scope's
    query runs only when the ones before it found nothing (an uncorrelated NOT EXISTS: a
    one-time filter of the plan). Each reads two index-ordered halves around the interaction
    (before and after it), so a busy product costs twice the limit in rows, not its window."""
    seller_id = bindparam("seller_id", type_=BigInteger)
    row_id = bindparam("row_id", type_=BigInteger)
    fetch = TIMELINE_LIMIT + 1
    table = Interaction.__table__

    def columns(t: Any) -> list[ColumnElement[Any]]:
        preview = links_repository.text_preview(t.c).label("text_preview")
        return [preview if name == "text_preview" else t.c[name] for name in TIMELINE_COLUMNS]

    x = (
        select(*columns(table), table.c.customer_id, table.c.order_id, table.c.nm_id)
        .where(table.c.seller_id == seller_id, table.c.id == row_id)
        .cte("x")
    )

    def nearest(name: str, match: list[str], guards: list[Any], days: int | None = None) -> Any:
        t = table.alias(f"{name}_related")
        base = [t.c.seller_id == seller_id, t.c.id != x.c.id, *(t.c[c] == x.c[c] for c in match)]
        before, after = [t.c.occurred_at <= x.c.occurred_at], [t.c.occurred_at > x.c.occurred_at]
        if days is not None:
            window = func.make_interval(0, 0, 0, days)
            before.append(t.c.occurred_at >= x.c.occurred_at - window)
            after.append(t.c.occurred_at <= x.c.occurred_at + window)

        def half(where: list[Any], newest_first: bool) -> Select[Any]:
            # The nearest `fetch` by (time, id) are among the nearest `fetch` by time with
            # their ties: that much is read in the index's order (an ORDER BY with the id made
            # the plan read and sort the product's whole window).
            by_time = t.c.occurred_at.desc() if newest_first else t.c.occurred_at.asc()
            near = (
                select(*columns(t))
                .where(*base, *where)
                .order_by(by_time)
                .fetch(fetch, with_ties=True)
                .correlate(x)
                .subquery()
            )
            by_id = near.c.id.desc() if newest_first else near.c.id.asc()
            by_time = near.c.occurred_at.desc() if newest_first else near.c.occurred_at.asc()
            return select(near).order_by(by_time, by_id).limit(fetch)

        halves = union_all(half(before, True), half(after, False)).lateral(f"{name}_halves")
        distance = func.abs(extract("epoch", halves.c.occurred_at - x.c.occurred_at))
        return (
            select(*(halves.c[c] for c in TIMELINE_COLUMNS))
            .select_from(x)
            .join(halves, true())
            .where(*(~exists(select(literal(1)).select_from(g)) for g in guards))
            .order_by(distance, halves.c.id)
            .limit(fetch)
            .cte(name)
        )

    customer_order = nearest("customer_order", ["customer_id", "order_id"], [])
    customer = nearest("customer", ["customer_id"], [customer_order])
    window = links_service.PRODUCT_WINDOW.days
    product = nearest("product", ["nm_id"], [customer_order, customer], window)

    no_link = [cast(null(), type_).label(name) for name, type_ in LINK_COLUMNS.items()]
    parts = {"self": x, "customer_order": customer_order, "customer": customer, "product": product}
    scoped = [
        select(literal(kind).label("kind"), *(part.c[c] for c in TIMELINE_COLUMNS), *no_link)
        for kind, part in parts.items()
    ]
    lc, t = LinkCandidate.__table__, table.alias("linked")
    links = (
        select(
            literal("link").label("kind"),
            *columns(t),
            *(lc.c[name] for name in LINK_COLUMNS),
        )
        .select_from(x)
        .join(lc, and_(lc.c.seller_id == seller_id, lc.c.source_id == x.c.id))
        .join(t, and_(t.c.seller_id == seller_id, t.c.id == lc.c.target_id))
        .where(lc.c.band.in_(links_service.BANDS_AT_LEAST[links_service.SHOWN_MIN_BAND]))
    )
    return _bound_only(union_all(*scoped, links), ("seller_id", "row_id"))


TIMELINE = _timeline_statement()


async def timeline_rows(
    db: AsyncConnection, seller_id: int, interaction_id: int
) -> list[dict[str, Any]]:
    """The rows of `_timeline_statement` as dicts; none when the interaction is not the
    seller's."""
    result = await db.execute(TIMELINE, {"seller_id": seller_id, "row_id": interaction_id})
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]
