"""Marketplace-neutral items → interaction rows: the sync's own part of normalising.

A connector's mapping reads its marketplace's payloads into `InteractionItem`s (the facts the
marketplace determines); here each gets what we derive from the buyer's words: intent, priority
and the SLA deadline (`app.interactions.classify`). Heavy fields are computed for every item but
only written when the row is new (see `sync.repository.upsert_interactions`).
"""

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from app.connectors.base import Connector, InteractionItem, Invalid, ListChannel
from app.interactions import classify


@dataclass(frozen=True)
class SellerContext:
    seller_id: int
    sla_targets: dict[str, Any]


@dataclass
class Normalized:
    rows: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[Invalid] = field(default_factory=list)
    newest: int | None = None  # Unix seconds of the newest valid item


def classified(item: InteractionItem, ctx: SellerContext) -> dict[str, Any]:
    """The item's row with intent, priority and SLA deadline."""
    row = item.row
    channel = row["channel"]
    intent = classify.classify_intent(*item.texts)
    if channel == "review":
        priority = classify.review_priority(row["rating"], intent, row["text"], row["cons"])
    elif channel == "question":
        priority = classify.question_priority(intent, row["text"])
    else:
        priority = classify.chat_priority(intent, " ".join(item.texts))
    due = item.clock_from
    return row | {
        "intent": intent,
        "priority": priority.level,
        "priority_reason": priority.reason,
        "sla_due_at": classify.sla_due(ctx.sla_targets, channel, intent, due) if due else None,
    }


def list_rows(
    connector: Connector, channel: ListChannel, raws: list[Any], ctx: SellerContext
) -> Normalized:
    """Raw reviews or questions as rows, with the ones that could not be read."""
    batch = connector.list_items(channel, raws, ctx.seller_id)
    out = Normalized(invalid=batch.invalid)
    for item in batch.items:
        out.rows.append(classified(item, ctx))
        second = int(item.row["occurred_at"].timestamp())
        out.newest = second if out.newest is None else max(out.newest, second)
    return out


def error_row(invalid: Invalid, *, seller_id: int, run_id: int, channel: str) -> dict[str, Any]:
    """A `sync_errors` row for an item that could not be read."""
    exc = invalid.error
    message = str(exc) if not isinstance(exc, ValidationError) else _validation_text(exc)
    return {
        "seller_id": seller_id,
        "run_id": run_id,
        "channel": channel,
        "external_id": invalid.external_id,
        "error": message[:2000],
        "raw": invalid.raw,
    }


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
    )
