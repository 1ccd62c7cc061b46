"""The operator's card and the cross-channel timeline: read models over several domains."""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth.service import Principal
from app.cards import repository
from app.cards.schemas import InteractionCard, Timeline
from app.core.errors import NotFound
from app.interactions import service as interactions_service
from app.interactions.models import CHANNELS
from app.links import service as links_service
from app.links.models import Level

# --- the card ------------------------------------------------------------------------------


async def card(db: AsyncConnection, principal: Principal, interaction_id: int) -> InteractionCard:
    """The interaction with its chat messages, product context, links, SLA, last draft and
    latest outbox entry."""
    now = datetime.now(UTC)
    since = now - timedelta(days=interactions_service.CONTEXT_DAYS)
    found = await repository.card(db, principal.seller_id, interaction_id, since)
    if found is None:
        raise NotFound("interaction not found")
    row, extras = found
    due = row["sla_due_at"]
    state = interactions_service.sla_state(row["needs_response"], due, now)
    minutes_left = (
        int((due - now).total_seconds() // 60) if due is not None and state != "none" else None
    )
    row["sla_state"] = state
    return InteractionCard.model_validate(
        {
            "interaction": row,
            "messages": extras["messages"],
            "context": product_context(row, extras),
            "links": links_service.read_links(extras["links"]),
            "sla": {"state": state, "due_at": due, "minutes_left": minutes_left},
            "last_draft": next(iter(extras["draft"]), None),
            "outbox": next(iter(extras["outbox"]), None),
        }
    )


def product_context(
    row: Mapping[str, Any], extras: Mapping[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    grouped: dict[str, list[dict[str, Any]]] = {channel: [] for channel in CHANNELS}
    for item in extras["recent"]:
        item["text_preview"] = (item["text"] or item["cons"] or item["pros"] or "")[:160]
        grouped[item["channel"]].append(item)
    for items in grouped.values():  # JSON keeps no order: newest first again
        items.sort(key=lambda item: (item["occurred_at"], item["id"]), reverse=True)
    names = (item["product_name"] for item in extras["recent"] if item["product_name"])
    return {
        "nm_id": row["nm_id"],
        "product_name": row["product_name"] or next(names, None),
        "recent": grouped if row["nm_id"] is not None else {},
        "top_intents": sorted(extras["top_intents"], key=lambda i: (-i["count"], i["intent"])),
        "last_replies": sorted(
            extras["last_replies"], key=lambda r: r["occurred_at"], reverse=True
        ),
    }


# --- the timeline --------------------------------------------------------------------------

# When one interaction is related in several ways, the most specific relation is shown.
_PRECEDENCE = {"self": 0, "B": 1, "C": 2, "A": 3}
# Per scope: how its items are related (match reason, level, confidence; all deterministic).
_SCOPE_RELATION: dict[str, tuple[str, Level, float]] = {
    "customer_order": ("same_customer_order", "B", links_service.CUSTOMER_ORDER),
    "customer": ("same_customer", "B", links_service.CUSTOMER),
    "product": ("same_product", "A", links_service.PRODUCT_CONFIDENCE),
}


def _item(
    row: Mapping[str, Any],
    match_reason: str,
    level: Level | None,
    deterministic: bool,
    confidence: float,
) -> dict[str, Any]:
    return {
        "interaction": {name: row[name] for name in repository.TIMELINE_COLUMNS},
        "match_reason": match_reason,
        "confidence": confidence,
        "action_mode": links_service.action_mode(level, deterministic, confidence),
        "level": level,
        "deterministic": deterministic,
    }


async def timeline(db: AsyncConnection, seller_id: int, interaction_id: int) -> Timeline:
    """The thread across channels around one interaction.

    Scope, the first that has other interactions: customer+order, customer, product (±30 days),
    else the interaction alone; at most `TIMELINE_LIMIT` of them, nearest in time. Stored links
    in the medium and high bands are merged in (the low band never shows).
    """
    rows = await repository.timeline_rows(db, seller_id, interaction_id)
    x = next((row for row in rows if row["kind"] == "self"), None)
    if x is None:
        raise NotFound("interaction not found")
    related = [row for row in rows if row["kind"] in _SCOPE_RELATION]
    scope = related[0]["kind"] if related else "single"  # one scope's rows at most
    related.sort(key=lambda row: (abs((row["occurred_at"] - x["occurred_at"]).total_seconds()),
                                  row["id"]))  # fmt: skip
    truncated = len(related) > repository.TIMELINE_LIMIT

    chosen: dict[int, tuple[tuple[int, float], dict[str, Any]]] = {}

    def offer(item: dict[str, Any]) -> None:
        key = (_PRECEDENCE[item["level"] or "self"], -item["confidence"])
        current = chosen.get(item["interaction"]["id"])
        if current is None or key < current[0]:
            chosen[item["interaction"]["id"]] = (key, item)

    offer(_item(x, "self", None, True, 1.0))
    if related:
        reason, level, confidence = _SCOPE_RELATION[scope]
        for row in related[: repository.TIMELINE_LIMIT]:
            offer(_item(row, reason, level, True, confidence))
    for row in rows:
        if row["kind"] == "link":
            confidence = float(row["confidence"])
            offer(_item(row, row["match_reason"], row["level"], row["deterministic"], confidence))
    items = sorted(
        (item for _, item in chosen.values()),
        key=lambda item: (item["interaction"]["occurred_at"], item["interaction"]["id"]),
    )
    return Timeline.model_validate(
        {"interaction_id": x["id"], "scope": scope, "items": items, "truncated": truncated}
    )
