"""All SQL of linking. Every statement is scoped to one seller.

Scoring is one set-based statement per batch of sources (`SCORE`): candidate pairs come from
index range scans (customer: `ix_interactions_seller_customer`; product: `ix_interactions_seller_nm`
on (seller_id, nm_id, occurred_at)), each pair is scored once, the best `:max_per_source` per
source are kept (window function) and written in both directions.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    RowMapping,
    Select,
    and_,
    bindparam,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.interactions.models import Interaction
from app.links.models import LinkCandidate, link_backlog

PREVIEW_CHARS = 160

AnyRow = Row[*tuple[Any, ...]]

# Lower-case without relying on the database's LC_CTYPE (a "C" ctype lowercases ASCII only),
# then ё → е: "  Пётр " and "ПЕТР" are the same name.
_UPPER = "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
_LOWER = _UPPER.lower().replace("ё", "е")


def _norm_name(column: str) -> str:
    return (
        f"nullif(replace(lower(translate(btrim({column}), '{_UPPER}', '{_LOWER}')), 'ё', 'е'), '')"
    )


# Parameters: seller_id, ids (the sources), the weights, thresholds and max_per_source.
# Level B needs no time window (a customer's history); level C only looks at other channels
# within ±7 days on the same product, and never pairs two different known customers.
SCORE = text(
    f"""
WITH src AS (
    SELECT s.id, s.channel, s.customer_id, s.order_id, s.nm_id, s.occurred_at, s.intent,
           s.text, s.extra, {_norm_name("s.customer_name")} AS name
    FROM interactions s
    WHERE s.seller_id = :seller_id AND s.id = ANY(:ids)
),
pairs_b AS (
    -- Per source, an index probe (OFFSET 0 keeps it a parameterised nested loop: work follows
    -- the batch, not the seller's size).
    SELECT s.id AS source_id, t.id AS target_id, s.occurred_at AS source_at,
           t.occurred_at AS target_at,
           true AS same_customer, coalesce(t.order_id = s.order_id, false) AS same_order
    FROM src s
    CROSS JOIN LATERAL (
        SELECT t.id, t.occurred_at, t.order_id
        FROM interactions t
        WHERE t.seller_id = :seller_id AND t.customer_id = s.customer_id AND t.id <> s.id
        OFFSET 0
    ) t
    WHERE s.customer_id IS NOT NULL
    UNION ALL
    SELECT s.id, t.id, s.occurred_at, t.occurred_at, false, true
    FROM src s
    JOIN interactions t
      ON t.seller_id = :seller_id AND t.order_id = s.order_id AND t.id <> s.id
    WHERE NOT coalesce(t.customer_id = s.customer_id, false)  -- else counted above
),
scored_b AS (
    SELECT source_id, target_id, source_at, target_at, 'B' AS level, true AS deterministic,
           CASE WHEN same_customer AND same_order THEN CAST(:b_customer_order AS numeric)
                WHEN same_order THEN CAST(:b_order AS numeric)
                ELSE CAST(:b_customer AS numeric) END AS confidence,
           CASE WHEN same_customer AND same_order THEN 'same_customer_order'
                WHEN same_order THEN 'same_order'
                ELSE 'same_customer' END AS match_reason,
           NULL::jsonb AS signals
    FROM pairs_b
),
pairs_c AS (
    SELECT s.id AS source_id, t.id AS target_id, s.occurred_at AS source_at,
           t.occurred_at AS target_at,
           CASE WHEN abs(extract(epoch FROM t.occurred_at - s.occurred_at)) < 86400
                THEN CAST(:w_within_24h AS numeric) END AS within_24h,
           CASE WHEN s.intent IS NOT NULL AND s.intent <> 'other' AND t.intent = s.intent
                THEN CAST(:w_same_intent AS numeric) END AS same_intent,
           CASE WHEN s.name IS NOT NULL AND {_norm_name("t.customer_name")} = s.name
                THEN CAST(:w_same_name AS numeric) END AS same_name,
           CASE WHEN (length(s.order_id) >= :min_order_ref
                      AND (strpos(coalesce(t.text, ''), s.order_id) > 0
                           OR strpos(t.extra::text, s.order_id) > 0))
                  OR (length(t.order_id) >= :min_order_ref
                      AND (strpos(coalesce(s.text, ''), t.order_id) > 0
                           OR strpos(s.extra::text, t.order_id) > 0))
                  OR nullif(s.extra ->> 'size', '') = t.extra ->> 'size'
                THEN CAST(:w_order_ref AS numeric) END AS order_ref
    FROM src s
    CROSS JOIN LATERAL (  -- a range of ix_interactions_seller_nm per source
        SELECT t.id, t.occurred_at, t.intent, t.customer_id, t.customer_name, t.order_id,
               t.text, t.extra
        FROM interactions t
        WHERE t.seller_id = :seller_id
          AND t.nm_id = s.nm_id
          AND t.occurred_at BETWEEN s.occurred_at - interval '7 days'
                                AND s.occurred_at + interval '7 days'
          AND t.channel <> s.channel
        OFFSET 0
    ) t
    WHERE s.nm_id IS NOT NULL
      AND (s.customer_id IS NULL OR t.customer_id IS NULL OR t.customer_id = s.customer_id)
),
scored_c AS (
    SELECT source_id, target_id, source_at, target_at, 'C' AS level,
           false AS deterministic,  -- policy: never deterministic, whatever the score
           least(CAST(:w_same_product_7d AS numeric) + coalesce(within_24h, 0)
                 + coalesce(same_intent, 0) + coalesce(same_name, 0) + coalesce(order_ref, 0),
                 1) AS confidence,
           'probable_same_customer' AS match_reason,
           jsonb_strip_nulls(jsonb_build_object(
               'same_product_7d', CAST(:w_same_product_7d AS numeric),
               'within_24h', within_24h, 'same_intent', same_intent,
               'same_name', same_name, 'order_ref', order_ref)) AS signals
    FROM pairs_c
),
best AS (  -- one row per pair: a deterministic link beats a probable one
    SELECT DISTINCT ON (source_id, target_id) *
    FROM (SELECT * FROM scored_b UNION ALL SELECT * FROM scored_c) AS scored
    ORDER BY source_id, target_id, deterministic DESC, confidence DESC
),
ranked AS (
    SELECT *, row_number() OVER (
        PARTITION BY source_id
        ORDER BY deterministic DESC, confidence DESC,
                 abs(extract(epoch FROM target_at - source_at)), target_id
    ) AS rank
    FROM best
),
kept AS (
    SELECT source_id, target_id, level, deterministic, confidence, match_reason,
           coalesce(signals, jsonb_build_object(match_reason, confidence)) AS signals
    FROM ranked
    WHERE rank <= :max_per_source
),
both_directions AS (
    SELECT source_id, target_id, level, deterministic, confidence, match_reason, signals
    FROM kept
    UNION ALL
    SELECT target_id, source_id, level, deterministic, confidence, match_reason, signals
    FROM kept
)
INSERT INTO link_candidates
    (seller_id, source_id, target_id, level, deterministic, confidence, band, match_reason,
     signals)
SELECT DISTINCT ON (source_id, target_id)
       :seller_id, source_id, target_id, level, deterministic, confidence,
       CASE WHEN confidence >= CAST(:high AS numeric) THEN 'high'
            WHEN confidence >= CAST(:medium AS numeric) THEN 'medium'
            ELSE 'low' END,
       match_reason, signals
FROM both_directions
ORDER BY source_id, target_id, deterministic DESC, confidence DESC
ON CONFLICT (source_id, target_id) DO NOTHING
"""  # noqa: S608 - the only interpolation is _norm_name's fixed SQL, never input
).bindparams(
    bindparam("seller_id", type_=BigInteger),
    bindparam("ids", type_=ARRAY(BigInteger)),
)


@dataclass(frozen=True)
class ScoreParams:
    """Weights and thresholds, bound into `SCORE` (the service owns the policy values)."""

    b_customer_order: float
    b_order: float
    b_customer: float
    w_same_product_7d: float
    w_within_24h: float
    w_same_intent: float
    w_same_name: float
    w_order_ref: float
    min_order_ref: int
    high: float
    medium: float
    max_per_source: int


def _seller_lock_key(seller_id: int) -> ColumnElement[int]:
    return func.hashtextextended(f"links:{seller_id}", 0)


async def lock_seller(session: AsyncSession, seller_id: int) -> None:
    """Serialise link writes per seller until the transaction ends (re-entrant)."""
    await session.execute(select(func.pg_advisory_xact_lock(_seller_lock_key(seller_id))))


async def try_lock_seller(session: AsyncSession, seller_id: int) -> bool:
    """`lock_seller` without waiting: False when another transaction writes the seller's links."""
    locked = await session.scalar(
        select(func.pg_try_advisory_xact_lock(_seller_lock_key(seller_id)))
    )
    return bool(locked)


async def existing_ids(session: AsyncSession, seller_id: int, ids: Sequence[int]) -> set[int]:
    result = await session.execute(
        select(Interaction.id).where(Interaction.seller_id == seller_id, Interaction.id.in_(ids))
    )
    return set(result.scalars())


async def delete_for(session: AsyncSession, seller_id: int, ids: Sequence[int]) -> None:
    """Drop every stored link touching these interactions, in both directions."""
    await session.execute(
        delete(LinkCandidate).where(
            LinkCandidate.seller_id == seller_id,
            or_(LinkCandidate.source_id.in_(ids), LinkCandidate.target_id.in_(ids)),
        )
    )


async def delete_seller(session: AsyncSession, seller_id: int) -> None:
    await session.execute(delete(LinkCandidate).where(LinkCandidate.seller_id == seller_id))


async def score(
    session: AsyncSession, seller_id: int, ids: Sequence[int], params: ScoreParams
) -> int:
    """Score `ids` against the seller's interactions and upsert both directions; rows written."""
    # Weights go in as exact decimals: 0.95 as a float8 is 0.94999…, which a band edge would see.
    weights = {k: Decimal(str(v)) if isinstance(v, float) else v for k, v in vars(params).items()}
    values: dict[str, Any] = {"seller_id": seller_id, "ids": list(ids)} | weights
    result = await session.execute(SCORE, values)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def id_batches_after(
    session: AsyncSession, seller_id: int, after: tuple[datetime, int] | None, limit: int
) -> list[AnyRow]:
    """The seller's next `limit` interactions in (occurred_at, id) order: neighbours in time
    land in the same batch, so their index ranges are read once while warm."""
    i = Interaction
    stmt = select(i.id, i.occurred_at).where(i.seller_id == seller_id)
    if after is not None:
        stmt = stmt.where(tuple_(i.occurred_at, i.id) > after)
    stmt = stmt.order_by(i.occurred_at, i.id).limit(limit)
    return list((await session.execute(stmt)).all())


def text_preview(i: Any = Interaction) -> ColumnElement[str]:
    """An interaction's text as lists of links show it: its text, else pros, else cons (`i`: the
    model or an alias of its table)."""
    body = func.coalesce(func.nullif(i.text, ""), func.nullif(i.pros, ""), i.cons, "")
    return func.left(body, PREVIEW_CHARS)


def links_query(
    seller_id: Any, interaction_id: Any, bands: Sequence[str], limit: int
) -> Select[Any]:
    """Stored links of an interaction with their target's columns, deterministic first, then by
    confidence. Takes values or SQL expressions: it correlates any other table, so the card's
    statement can read them for its own row."""
    lc, t = LinkCandidate, Interaction
    return (
        select(
            lc.target_id,
            t.channel.label("target_channel"),
            t.occurred_at.label("target_occurred_at"),
            text_preview().label("target_text_preview"),
            lc.level,
            lc.deterministic,
            lc.confidence,
            lc.band,
            lc.match_reason,
            lc.signals,
        )
        .join(t, and_(t.id == lc.target_id, t.seller_id == lc.seller_id))
        .where(lc.seller_id == seller_id, lc.source_id == interaction_id, lc.band.in_(bands))
        .order_by(lc.deterministic.desc(), lc.confidence.desc(), t.occurred_at.desc(), lc.target_id)
        .limit(limit)
        .correlate_except(lc, t)
    )


async def links_of(
    session: AsyncSession, seller_id: int, interaction_id: int, bands: Sequence[str], limit: int
) -> list[RowMapping]:
    result = await session.execute(links_query(seller_id, interaction_id, bands, limit))
    return list(result.mappings().all())


# -- backlog --------------------------------------------------------------------------------


async def add_backlog(session: AsyncSession, seller_id: int, ids: Sequence[int | None]) -> None:
    """Record interactions to link (None: all the seller's); a row already there stays, with its
    time. Sorted, so that two transactions adding the same ids cannot deadlock on the index."""
    lb = link_backlog
    values = [{"seller_id": seller_id, "interaction_id": i} for i in ids if i is None]
    if values:
        await session.execute(pg_insert(lb).values(values).on_conflict_do_nothing())
    numbers = sorted({i for i in ids if i is not None})
    if numbers:
        rows = select(
            literal(seller_id, BigInteger),
            func.unnest(bindparam("ids", numbers, type_=ARRAY(BigInteger))),
        )
        stmt = pg_insert(lb).from_select(["seller_id", "interaction_id"], rows)
        await session.execute(stmt.on_conflict_do_nothing())


async def take_whole_seller(session: AsyncSession, seller_id: int) -> bool:
    """Take a pending "all of the seller's interactions" request, with every row it covers."""
    lb = link_backlog
    taken = await session.execute(
        delete(lb)
        .where(lb.c.seller_id == seller_id, lb.c.interaction_id.is_(None))
        .returning(lb.c.seller_id)
    )
    if taken.first() is None:
        return False
    await session.execute(delete(lb).where(lb.c.seller_id == seller_id))
    return True


async def take_backlog(session: AsyncSession, seller_id: int, limit: int) -> list[int]:
    """Delete and return up to `limit` of the seller's pending interaction ids, lowest first.
    The rows come back if the transaction is rolled back."""
    lb = link_backlog
    first = (
        select(lb.c.interaction_id)
        .where(lb.c.seller_id == seller_id, lb.c.interaction_id.is_not(None))
        .order_by(lb.c.interaction_id)
        .limit(limit)
    )
    result = await session.execute(
        delete(lb)
        .where(lb.c.seller_id == seller_id, lb.c.interaction_id.in_(first.scalar_subquery()))
        .returning(lb.c.interaction_id)
    )
    return sorted(result.scalars())


async def oldest_pending(session: AsyncSession, seller_id: int) -> datetime | None:
    """When the seller's oldest pending row was queued; None with nothing pending."""
    lb = link_backlog
    stmt = select(func.min(lb.c.queued_at)).where(lb.c.seller_id == seller_id)
    oldest: datetime | None = await session.scalar(stmt)
    return oldest


async def pending_sellers(session: AsyncSession, limit: int) -> list[AnyRow]:
    """(seller_id, oldest) of sellers with a backlog, the longest waiting first."""
    lb = link_backlog
    oldest = func.min(lb.c.queued_at).label("oldest")
    stmt = select(lb.c.seller_id, oldest).group_by(lb.c.seller_id).order_by(oldest).limit(limit)
    return list((await session.execute(stmt)).all())
