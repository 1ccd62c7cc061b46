"""Cross-channel links (reference plan §4 levels A/B/C, §12 identity policy; product.md §5).

- Level B, deterministic: the same customer id and/or order id. Stored.
- Level C, probabilistic: another channel, same product within ±7 days, plus time, intent,
  normalised name and order-reference signals. Stored, always assist-only: a probable link is
  never deterministic whatever its score, and a name is only a weak signal (0.10) — a name
  match alone never makes a candidate, and with the product it stays in the low band.
- Level A, deterministic product context (same product within ±30 days): computed on read for
  the timeline (app/cards), never stored pairwise.

Auto-actions are allowed only on deterministic links with confidence ≥ 0.85 (product.md §5).
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.links import repository
from app.links.models import Band, Level
from app.links.schemas import ActionMode, LinkRead
from app.worker import enqueue

RECOMPUTE_TASK = "links.recompute"

# Level B confidences.
CUSTOMER_ORDER = 1.0
ORDER = 0.95
CUSTOMER = 0.9
# Level C weights (reference plan §12.2); their sum is 1.0 and the score is capped there too.
SAME_PRODUCT_7D = 0.45
WITHIN_24H = 0.20
SAME_INTENT = 0.20
SAME_NAME = 0.10
ORDER_REF = 0.05
# An order id shorter than this is not looked for in another item's text (too many accidents).
MIN_ORDER_REF_CHARS = 6
# Bands: high ≥ 0.85, medium 0.65–0.84, low below (stored, analytics only).
HIGH = 0.85
MEDIUM = 0.65
AUTO_ACTION_MIN = 0.85
# Level A: the same product within ±30 days, deterministic product context.
PRODUCT_CONFIDENCE = 0.85
PRODUCT_WINDOW = timedelta(days=30)

MAX_PER_SOURCE = 20  # best candidates kept per source (then mirrored)
BATCH = 2000  # sources per scoring statement

BANDS_AT_LEAST: dict[Band, tuple[Band, ...]] = {
    "high": ("high",),
    "medium": ("high", "medium"),
    "low": ("high", "medium", "low"),
}

PARAMS = repository.ScoreParams(
    b_customer_order=CUSTOMER_ORDER,
    b_order=ORDER,
    b_customer=CUSTOMER,
    w_same_product_7d=SAME_PRODUCT_7D,
    w_within_24h=WITHIN_24H,
    w_same_intent=SAME_INTENT,
    w_same_name=SAME_NAME,
    w_order_ref=ORDER_REF,
    min_order_ref=MIN_ORDER_REF_CHARS,
    high=HIGH,
    medium=MEDIUM,
    max_per_source=MAX_PER_SOURCE,
)


def band(confidence: float) -> Band:
    if confidence >= HIGH:
        return "high"
    return "medium" if confidence >= MEDIUM else "low"


def action_mode(level: Level | None, deterministic: bool, confidence: float) -> ActionMode:
    """Auto-actions only on deterministic links with confidence ≥ 0.85; level C never."""
    if deterministic and level != "C" and confidence >= AUTO_ACTION_MIN:
        return "auto_allowed"
    return "assist_only"


# -- scoring ---------------------------------------------------------------------------------


async def recompute_for(
    session: AsyncSession, seller_id: int, interaction_ids: Sequence[int]
) -> int:
    """Recompute the links of these (new or changed) interactions against the seller's others.

    Every stored link touching them is replaced (both directions); each keeps its best
    `MAX_PER_SOURCE` candidates (deterministic first, then confidence, then nearest in time),
    written as source→target and target→source. The mirror means an interaction can hold a few
    more than 20 rows (it may be among others' best; in time order at most ~2×). Which pairs are
    kept is decided from the recomputed side; `recompute_seller` is the canonical rebuild.
    Ids of other sellers match nothing. Returns the rows written.
    """
    ids = sorted(set(interaction_ids))
    if not ids:
        return 0
    await repository.lock_seller(session, seller_id)
    # Delete for all first: a later batch must not delete the mirrors an earlier one wrote.
    for start in range(0, len(ids), BATCH):
        await repository.delete_for(session, seller_id, ids[start : start + BATCH])
    written = 0
    for start in range(0, len(ids), BATCH):
        written += await repository.score(session, seller_id, ids[start : start + BATCH], PARAMS)
    return written


async def recompute_seller(session: AsyncSession, seller_id: int, *, batch: int = BATCH) -> int:
    """All of a seller's links from scratch, `batch` sources per statement; rows written."""
    await repository.lock_seller(session, seller_id)
    await repository.delete_seller(session, seller_id)
    written = 0
    after = None
    while rows := await repository.id_batches_after(session, seller_id, after, batch):
        written += await repository.score(session, seller_id, [r.id for r in rows], PARAMS)
        after = (rows[-1].occurred_at, rows[-1].id)
    return written


async def recompute(
    session: AsyncSession, seller_id: int, interaction_ids: Sequence[int] | None
) -> int:
    """The given interactions, or the whole seller (None), in the caller's transaction."""
    if interaction_ids is None:
        return await recompute_seller(session, seller_id)
    return await recompute_for(session, seller_id, interaction_ids)


# -- requests -------------------------------------------------------------------------------
# Work to do is a row in `link_backlog`, committed with the interactions it is about; at most
# one `links.recompute` task per seller is pending (a Redis marker, see `enqueue.send_once`),
# and it drains every row queued until it ends (`app.links.backlog`).

# A pending task's marker lives this long (the running task renews it): if the task is lost,
# the control tick asks for a new one once it has expired.
MARKER_TTL_SECONDS = 600


def marker_key(seller_id: int) -> str:
    return f"sellerdesk:links:pending:{seller_id}"


async def add_to_backlog(
    session: AsyncSession, seller_id: int, interaction_ids: Sequence[int] | None
) -> None:
    """Record that these interactions (None: all the seller's) need their links computed, in
    the caller's transaction. Nothing is queued: see `request_after_commit` / `request_now`."""
    await repository.add_backlog(
        session, seller_id, [None] if interaction_ids is None else interaction_ids
    )


def request_after_commit(session: AsyncSession, seller_id: int) -> None:
    """Queue the seller's recompute once the caller's transaction commits, unless one is
    already pending."""
    enqueue.defer_once(
        session, marker_key(seller_id), MARKER_TTL_SECONDS, RECOMPUTE_TASK, seller_id
    )


async def request_now(seller_id: int) -> bool:
    """Queue the seller's recompute unless one is pending; True when this call queued it."""
    return await enqueue.send_once(
        marker_key(seller_id), MARKER_TTL_SECONDS, RECOMPUTE_TASK, seller_id
    )


async def request_recompute(
    session: AsyncSession, seller_id: int, interaction_ids: Sequence[int] | None
) -> None:
    """`POST /links/recompute` and the demo seed: the ids (each must be the seller's), or all
    of the seller's interactions, go to the backlog; the recompute is queued after commit."""
    ids = None
    if interaction_ids is not None:
        ids = sorted(set(interaction_ids))
        found = await repository.existing_ids(session, seller_id, ids)
        if missing := [i for i in ids if i not in found]:
            raise NotFound("interactions not found", details={"ids": missing[:50]})
    await add_to_backlog(session, seller_id, ids)
    request_after_commit(session, seller_id)


# -- reading ---------------------------------------------------------------------------------


# What the card (and `GET …/links` by default) shows: the medium and high bands, 20 at most.
SHOWN_MIN_BAND: Band = "medium"
SHOWN_LIMIT = 20


async def links_for(
    session: AsyncSession,
    seller_id: int,
    interaction_id: int,
    *,
    min_band: Band = SHOWN_MIN_BAND,
    limit: int = SHOWN_LIMIT,
    or_404: bool = False,
) -> list[LinkRead]:
    """Stored links of an interaction, deterministic first, then by confidence. The low band
    (analytics only) is left out unless `min_band="low"`. Another seller's id gives [] (with
    `or_404`, NotFound)."""
    if or_404 and not await repository.existing_ids(session, seller_id, [interaction_id]):
        raise NotFound("interaction not found")
    rows = await repository.links_of(
        session, seller_id, interaction_id, BANDS_AT_LEAST[min_band], limit
    )
    return read_links(rows)


def links_query(seller_id: Any, interaction_id: Any) -> Select[Any]:
    """`links_for`'s statement with its defaults, for a statement that reads them among other
    things (the card's); its rows go through `read_links`, which applies the policy."""
    return repository.links_query(
        seller_id, interaction_id, BANDS_AT_LEAST[SHOWN_MIN_BAND], SHOWN_LIMIT
    )


def read_links(rows: Iterable[Mapping[Any, Any]]) -> list[LinkRead]:
    """The links as shown: each with the action mode the policy allows."""
    return [
        LinkRead(
            target_id=r["target_id"],
            target_channel=r["target_channel"],
            target_occurred_at=r["target_occurred_at"],
            target_text_preview=r["target_text_preview"],
            level=r["level"],
            deterministic=r["deterministic"],
            confidence=float(r["confidence"]),
            band=r["band"],
            match_reason=r["match_reason"],
            signals=r["signals"],
            action_mode=action_mode(r["level"], r["deterministic"], float(r["confidence"])),
        )
        for r in rows
    ]
